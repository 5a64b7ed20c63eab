//! The HTML of the self-service page (maud, compiled with the crate): the
//! form page and the answer pages, Traditional Chinese and English side by
//! side. No script, no inline style: the stylesheet is a separate file,
//! so the Content-Security-Policy can forbid both.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use super::STYLESHEET_PATH;
use super::answer::mask_serial;
use super::answer::{Answer, lockout_notice};
use super::words::{Bilingual, in_minutes, profile_name, status_name};
use crate::authority::rfc3339;
use crate::authority::self_service::{CardAction, ChangedCertificate};
use crate::domain::SyncWindow;
use crate::domain::lockout::Throttle;

const ZH: &str = "zh-Hant-TW";
const EN: &str = "en";

/// What the form page needs to know.
#[derive(Debug, Clone)]
pub struct FormPage<'a> {
    pub csrf_token: &'a str,
    pub window: SyncWindow,
    pub throttle: Throttle,
}

/// The whole document around a page's content.
fn layout(title: &Bilingual, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(ZH) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title.zh) " · " (title.en) }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                header {
                    p.service { span lang=(ZH) { "憑證管理中心 自助服務" } " " span lang=(EN) { "Certificate authority · self-service" } }
                    h1 { span lang=(ZH) { (title.zh) } " " span.en lang=(EN) { (title.en) } }
                }
                main { (content) }
            }
        }
    }
}

/// Two paragraphs side by side, one per language.
fn side_by_side(text: &Bilingual) -> Markup {
    html! {
        div.bilingual {
            p lang=(ZH) { (text.zh) }
            p lang=(EN) { (text.en) }
        }
    }
}

/// A short label in both languages, inline.
fn both(text: &Bilingual) -> Markup {
    html! { span lang=(ZH) { (text.zh) } " " span.en lang=(EN) { (text.en) } }
}

fn back_link() -> Markup {
    html! {
        p.back { a href="/self-service" { (both(&Bilingual::new("回到自助服務頁", "Back to the self-service page"))) } }
    }
}

/// `GET /self-service`.
pub fn form_page(page: &FormPage<'_>) -> Markup {
    let title = Bilingual::new(
        "憑證暫禁與解除暫禁",
        "Suspend or resume your card's certificates",
    );
    layout(
        &title,
        html! {
            section aria-labelledby="about" {
                h2 id="about" { (both(&Bilingual::new("關於暫禁", "About suspension"))) }
                (side_by_side(&Bilingual::new(
                    "IC 卡一時找不到時，可在此以用戶代碼及 IC 卡號，立即暫禁該卡上的全部憑證。暫禁不需指定期間，最長至憑證效期屆滿為止；找回卡片後，可在此解除暫禁，恢復使用。",
                    "If you have mislaid your IC card, you can suspend all certificates on it at once with your subscriber code and IC card number. A suspension needs no period: it lasts until you resume it, at most until the certificates expire. When the card turns up, resume the certificates here.",
                )))
                (side_by_side(&Bilingual::new(
                    "若卡片確定遺失或損毀，請攜帶身分證明文件至註冊窗口辦理廢止並重新申請新卡。廢止後無法恢復。",
                    "If the card is really lost or damaged, take your identity document to a registration window to have the certificates revoked and to apply for a new card. Revocation cannot be undone.",
                )))
            }
            section aria-labelledby="when" {
                h2 id="when" { (both(&Bilingual::new("何時生效", "When the change takes effect"))) }
                (side_by_side(&sync_window_notice(&page.window)))
            }
            div.forms {
                (card_form(CardAction::Suspend, page.csrf_token))
                (card_form(CardAction::Resume, page.csrf_token))
            }
            (side_by_side(&lockout_notice(&page.throttle)))
        },
    )
}

fn sync_window_notice(window: &SyncWindow) -> Bilingual {
    let ocsp = in_minutes(window.ocsp_max_age);
    let delta = in_minutes(window.delta_crl_interval);
    let full = in_minutes(window.full_crl_interval);
    Bilingual::new(
        format!(
            "送出後立即生效。以線上憑證狀態查詢（OCSP）檢查憑證的服務立即可查得新狀態，若其暫存查詢結果，最遲 {}；使用差異憑證廢止清冊（delta CRL）的服務最遲 {}；僅使用完整憑證廢止清冊的服務最遲 {}。",
            ocsp.zh, delta.zh, full.zh
        ),
        format!(
            "A change takes effect as soon as you submit it. Services that check certificates online (OCSP) see the new status at once, or within {} if they cache answers; services using delta certificate revocation lists (delta CRLs) within {}; services reading only full CRLs within {}.",
            ocsp.en, delta.en, full.en
        ),
    )
}

/// One of the two forms; field names are those of SPEC §7.
fn card_form(action: CardAction, csrf_token: &str) -> Markup {
    let id = action.name();
    let (heading, button) = match action {
        CardAction::Suspend => (
            Bilingual::new("暫禁憑證", "Suspend certificates"),
            Bilingual::new("暫禁", "Suspend"),
        ),
        CardAction::Resume => (
            Bilingual::new("解除暫禁", "Resume certificates"),
            Bilingual::new("解除暫禁", "Resume"),
        ),
    };
    html! {
        form id={(id) "-form"} method="post" action={"/self-service/" (id)} aria-labelledby={(id) "-heading"} {
            h2 id={(id) "-heading"} { (both(&heading)) }
            input type="hidden" name="csrf_token" value=(csrf_token);
            (code_field(id, "subscriber_code", &Bilingual::new("用戶代碼", "Subscriber code"), "A800000014"))
            (code_field(id, "card_number", &Bilingual::new("IC 卡號", "IC card number"), "TP03000001"))
            button id={(id) "-submit"} type="submit" { (both(&button)) }
        }
    }
}

/// A subscriber code or card number field: 4–16 letters and digits
/// (`issuance::identity::check_code`; lower case is accepted and upper-cased).
fn code_field(form: &str, name: &str, label: &Bilingual, example: &str) -> Markup {
    let id = format!("{form}-{}", name.replace('_', "-"));
    let hint_id = format!("{id}-hint");
    html! {
        div.field {
            label for=(id) { (both(label)) }
            input id=(id) type="text" name=(name) required minlength="4" maxlength="16"
                pattern="[A-Za-z0-9]{4,16}" autocomplete="off" autocapitalize="characters"
                spellcheck="false" aria-describedby=(hint_id)
                title="4–16 個英文字母或數字 · 4–16 letters or digits";
            p.hint id=(hint_id) {
                span lang=(ZH) { "4 至 16 個英文字母或數字，例如 " (example) }
                " · "
                span lang=(EN) { "4 to 16 letters or digits, e.g. " (example) }
            }
        }
    }
}

/// The page answering a POST.
pub fn answer_page(answer: &Answer) -> Markup {
    let content = match answer {
        Answer::Changed {
            card_number,
            certificates,
            at,
            window,
            ..
        } => html! {
            (side_by_side(&answer.detail()))
            (certificate_table(card_number, certificates))
            (visibility(*at, window))
            (back_link())
        },
        Answer::Locked { until, .. } => html! {
            (side_by_side(&answer.detail()))
            p { (both(&Bilingual::new("可再次嘗試的時間：", "You may try again after:"))) " " (timestamp(*until)) }
            (back_link())
        },
        _ => html! {
            (side_by_side(&answer.detail()))
            (back_link())
        },
    };
    layout(&answer.title(), content)
}

fn certificate_table(card_number: &str, certificates: &[ChangedCertificate]) -> Markup {
    html! {
        table {
            caption {
                span lang=(ZH) { "IC 卡 " (card_number) " 的憑證" } " " span.en lang=(EN) { "Certificates of IC card " (card_number) }
            }
            thead {
                tr {
                    th scope="col" { (both(&Bilingual::new("用途", "Purpose"))) }
                    th scope="col" { (both(&Bilingual::new("序號（部分遮蔽）", "Serial number (partly hidden)"))) }
                    th scope="col" { (both(&Bilingual::new("新狀態", "New status"))) }
                }
            }
            tbody {
                @for certificate in certificates {
                    tr {
                        td { (both(&profile_name(&certificate.profile))) }
                        td.serial { code { (mask_serial(&certificate.serial)) } }
                        td.status { (both(&status_name(certificate.status))) }
                    }
                }
            }
        }
    }
}

fn visibility(at: OffsetDateTime, window: &SyncWindow) -> Markup {
    html! {
        dl.times {
            dt { (both(&Bilingual::new("變更時間", "Changed at"))) }
            dd { (timestamp(at)) }
            dt { (both(&Bilingual::new("依賴憑證的服務最遲得知時間", "Relying services see it by"))) }
            dd id="visible-by" { (timestamp(window.visible_by(at))) }
            dt { (both(&Bilingual::new("僅使用完整 CRL 的服務", "Services reading only full CRLs"))) }
            dd { (timestamp(window.full_crl_by(at))) }
        }
    }
}

/// `2026-06-01 12:15:00 UTC`, machine-readable in `datetime`.
fn timestamp(t: OffsetDateTime) -> Markup {
    // RFC 3339 cannot express years past 9999; such a time is shown as
    // `time` displays it rather than not at all.
    let machine = rfc3339(t).unwrap_or_else(|_| t.to_string());
    let human = machine.replacen('T', " ", 1).replace('Z', " UTC");
    html! { time datetime=(machine) { (human) } }
}
