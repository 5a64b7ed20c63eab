//! Running the authority's use cases off the async executor: SQLite and
//! signing block, so every handler hands them to the blocking pool here.

use std::sync::Arc;

use super::App;
use super::problem::ApiError;
use crate::authority::{Authority, AuthorityError};

/// Runs `use_case` on the blocking pool, inside the request's tracing span
/// (so its log lines carry the request id).
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    use_case: impl FnOnce(&Authority) -> Result<T, AuthorityError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = Arc::clone(app);
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| use_case(&app.authority)))
        .await?
        .map_err(ApiError::from)
}
