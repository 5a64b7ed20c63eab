//! Every answer a POST can get, in one place: its HTTP status, its problem
//! type (RFC 9457) and its words in both languages. The HTML page and the
//! JSON variant render the same [`Answer`], so they cannot drift apart.

use axum::http::StatusCode;
use time::OffsetDateTime;

use super::csrf::CsrfError;
use super::words::{Bilingual, in_minutes};
use crate::authority::self_service::{CardAction, CardOutcome, ChangedCertificate, Refusal};
use crate::domain::SyncWindow;
use crate::domain::lockout::Throttle;

/// What a POST is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Changed {
        action: CardAction,
        card_number: String,
        certificates: Vec<ChangedCertificate>,
        at: OffsetDateTime,
        window: SyncWindow,
    },
    Refused(Refusal),
    PairNotRecognised(Throttle),
    Locked {
        until: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// A field is missing or not 4–16 letters and digits.
    BadInput,
    /// Not a form or JSON body.
    UnsupportedMediaType,
    /// A body over the page's limit.
    TooLarge,
    Forgery(CsrfError),
    Internal,
}

impl Answer {
    /// The answer to a handled request.
    pub fn of(
        outcome: CardOutcome,
        action: CardAction,
        card_number: &str,
        window: SyncWindow,
        throttle: Throttle,
        now: OffsetDateTime,
    ) -> Self {
        match outcome {
            CardOutcome::Changed { certificates, at } => Self::Changed {
                action,
                card_number: card_number.to_owned(),
                certificates,
                at,
                window,
            },
            CardOutcome::Refused(refusal) => Self::Refused(refusal),
            CardOutcome::PairNotRecognised => Self::PairNotRecognised(throttle),
            CardOutcome::Locked { until } => Self::Locked { until, now },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Changed { .. } => StatusCode::OK,
            Self::Refused(_) => StatusCode::CONFLICT,
            Self::PairNotRecognised(_) | Self::Forgery(_) => StatusCode::FORBIDDEN,
            Self::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadInput => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last part of the problem type URI.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Changed { action, .. } => match action {
                CardAction::Suspend => "suspended",
                CardAction::Resume => "resumed",
            },
            Self::Refused(Refusal::Revoked) => "card-revoked",
            Self::Refused(Refusal::AlreadySuspended) => "already-suspended",
            Self::Refused(Refusal::NotSuspended) => "not-suspended",
            Self::Refused(Refusal::NoCurrentCertificate) => "no-current-certificate",
            Self::Refused(Refusal::ResumeAtRegistrationWindow) => "resume-at-registration-window",
            Self::PairNotRecognised(_) => "pair-not-recognised",
            Self::Locked { .. } => "locked",
            Self::BadInput => "bad-input",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooLarge => "too-large",
            Self::Forgery(_) => "forbidden",
            Self::Internal => "internal",
        }
    }

    /// Seconds until a locked request may be retried (`Retry-After`).
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            Self::Locked { until, now } => Some((*until - *now).whole_seconds().max(1)),
            _ => None,
        }
    }

    pub fn title(&self) -> Bilingual {
        match self {
            Self::Changed { action, .. } => match action {
                CardAction::Suspend => Bilingual::new("憑證已暫禁", "Certificates suspended"),
                CardAction::Resume => Bilingual::new("憑證已解除暫禁", "Certificates resumed"),
            },
            Self::Refused(Refusal::Revoked) => Bilingual::new(
                "此卡的憑證已廢止",
                "The certificates of this card are revoked",
            ),
            Self::Refused(Refusal::AlreadySuspended) => Bilingual::new(
                "此卡的憑證已在暫禁中",
                "The certificates of this card are already suspended",
            ),
            Self::Refused(Refusal::NotSuspended) => Bilingual::new(
                "此卡的憑證未在暫禁中",
                "The certificates of this card are not suspended",
            ),
            Self::Refused(Refusal::NoCurrentCertificate) => Bilingual::new(
                "此卡沒有效期內的憑證",
                "This card has no certificate that is still valid",
            ),
            Self::Refused(Refusal::ResumeAtRegistrationWindow) => Bilingual::new(
                "此卡須至註冊窗口解除暫禁",
                "This card can be resumed only at a registration window",
            ),
            Self::PairNotRecognised(_) => Bilingual::new("無法受理", "Request not accepted"),
            Self::Locked { .. } => Bilingual::new("暫停受理", "Too many attempts"),
            Self::BadInput => Bilingual::new("輸入格式不正確", "The entries are not valid"),
            Self::UnsupportedMediaType => {
                Bilingual::new("不支援的資料格式", "Unsupported request format")
            }
            Self::TooLarge => Bilingual::new("送出的資料太長", "The request is too long"),
            Self::Forgery(_) => Bilingual::new(
                "表單已失效或非由本站送出",
                "This form has expired or did not come from this site",
            ),
            Self::Internal => Bilingual::new(
                "系統暫時無法處理",
                "The service cannot handle this right now",
            ),
        }
    }

    pub fn detail(&self) -> Bilingual {
        match self {
            Self::Changed { action, window, .. } => changed_detail(*action, window),
            Self::Refused(refusal) => refused_detail(*refusal),
            Self::PairNotRecognised(throttle) => {
                let limits = lockout_notice(throttle);
                Bilingual::new(
                    format!(
                        "用戶代碼與 IC 卡號不相符，或查無資料。請確認後再試。{}",
                        limits.zh
                    ),
                    format!(
                        "The subscriber code and IC card number do not match any card we know. Please check both and try again. {}",
                        limits.en
                    ),
                )
            }
            Self::Locked { .. } => {
                let wait = in_minutes(time::Duration::seconds(self.retry_after().unwrap_or(1)));
                Bilingual::new(
                    format!(
                        "錯誤次數過多，為保護您的憑證，暫停受理約 {}。情況緊急時，請以傳真提出緊急暫禁申請並附身分證明文件，或洽註冊窗口。",
                        wait.zh
                    ),
                    format!(
                        "Too many wrong entries: to protect your certificates, attempts are refused for about {}. In an emergency, send an emergency suspension request by fax with a copy of your identity document, or go to a registration window.",
                        wait.en
                    ),
                )
            }
            Self::BadInput => Bilingual::new(
                "請填寫用戶代碼與 IC 卡號，兩者皆為 4 至 16 個英文字母或數字。",
                "Please fill in the subscriber code and the IC card number, each 4 to 16 letters or digits.",
            ),
            Self::UnsupportedMediaType => Bilingual::new(
                "請以本頁表單送出，或以 application/json 傳送。",
                "Submit the form on this page, or send application/json.",
            ),
            Self::TooLarge => Bilingual::new(
                "送出的資料太長，未變更任何憑證。請只填寫用戶代碼與 IC 卡號。",
                "The request is too long; nothing was changed. Please fill in only the subscriber code and the IC card number.",
            ),
            Self::Forgery(_) => Bilingual::new(
                "為保護您的安全，請重新開啟自助服務頁再送出，未變更任何憑證。",
                "For your safety, please reopen the self-service page and submit again. No certificate was changed.",
            ),
            Self::Internal => Bilingual::new("請稍後再試。", "Please try again later."),
        }
    }
}

fn changed_detail(action: CardAction, window: &SyncWindow) -> Bilingual {
    let worst = in_minutes(window.worst_case());
    let full = in_minutes(window.full_crl_interval);
    let (zh, en) = match action {
        CardAction::Suspend => (
            "下列憑證已暫禁。暫禁不需指定期間，最長至憑證效期屆滿為止；找回卡片後，可回本頁解除暫禁。",
            "The certificates below are now suspended. A suspension has no set period and lasts at most until the certificates expire; when the card turns up, come back to this page to resume them.",
        ),
        CardAction::Resume => (
            "下列憑證已解除暫禁，恢復使用。",
            "The certificates below are valid again.",
        ),
    };
    Bilingual::new(
        format!(
            "{zh}依賴憑證的服務最遲於 {}內得知此變更；僅使用完整憑證廢止清冊的服務最遲於 {}內。",
            worst.zh, full.zh
        ),
        format!(
            "{en} Relying services see the change within {} at the latest (within {} for those that read only full certificate revocation lists).",
            worst.en, full.en
        ),
    )
}

fn refused_detail(refusal: Refusal) -> Bilingual {
    match refusal {
        Refusal::Revoked => Bilingual::new(
            "廢止無法撤銷，此卡的憑證無法在本頁暫禁或解除暫禁。請攜帶身分證明文件至註冊窗口重新申請新卡，手續與首次申請相同。",
            "Revocation is permanent: the certificates of this card can be neither suspended nor resumed here. Please apply for a new card at a registration window, with your identity document, exactly as for a first application.",
        ),
        Refusal::AlreadySuspended => Bilingual::new(
            "不需再次暫禁，未變更任何憑證。找回卡片後，可在本頁解除暫禁。",
            "Nothing was changed. When the card turns up, you can resume the certificates on this page.",
        ),
        Refusal::NotSuspended => Bilingual::new(
            "沒有需要解除暫禁的憑證，未變更任何憑證。",
            "There is nothing to resume; nothing was changed.",
        ),
        Refusal::NoCurrentCertificate => Bilingual::new(
            "已過期的憑證無法變更狀態。如需新憑證，請至註冊窗口申請。",
            "The status of an expired certificate cannot change. For new certificates, please apply at a registration window.",
        ),
        Refusal::ResumeAtRegistrationWindow => Bilingual::new(
            "此卡的暫禁係由註冊窗口或緊急通報辦理，為防止他人持卡解除，僅能由註冊窗口解除。請攜帶卡片與身分證明文件至註冊窗口。未變更任何憑證。",
            "This card was suspended at a registration window or through the emergency channel. So that whoever holds the card cannot undo that, only a registration window can resume it: please bring the card and your identity document. Nothing was changed.",
        ),
    }
}

/// The throttling rules in words, as the form page and the refusal state them.
pub fn lockout_notice(throttle: &Throttle) -> Bilingual {
    let policy = throttle.lockout;
    let max = policy.max_failures;
    let window = in_minutes(policy.failure_window);
    let lockout = in_minutes(policy.lockout);
    let ceiling = throttle.suspend_card_ceiling;
    Bilingual::new(
        format!(
            "為保護您的憑證，同一連線來源於 {}內輸入錯誤 {max} 次後，或同一 IC 卡號的恢復使用輸入錯誤 {max} 次後，將暫停受理 {}。同一 IC 卡號的暫禁，僅於一日內輸入錯誤達 {ceiling} 次時才暫停受理。",
            window.zh, lockout.zh
        ),
        format!(
            "To protect your certificates, after {max} wrong entries within {} from the same connection, or for resuming the same card number, further attempts are refused for {}. Suspending a card number is refused only after {ceiling} wrong entries for it within a day.",
            window.en, lockout.en
        ),
    )
}

/// `3f2a…9c1e`: the first and last four hex digits of a serial, enough to
/// match it with the card's documents, too little to look anything up by.
pub fn mask_serial(hex: &str) -> String {
    const SHOWN: usize = 4;
    if hex.len() <= 2 * SHOWN || !hex.is_ascii() {
        return hex.to_owned();
    }
    format!("{}…{}", &hex[..SHOWN], &hex[hex.len() - SHOWN..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_masked_in_the_middle() {
        assert_eq!(mask_serial("3f2a00112233445566779c1e"), "3f2a…9c1e");
        assert_eq!(mask_serial("1234"), "1234");
    }
}
