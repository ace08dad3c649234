//! How the OpenAPI documents are served, as Kubernetes serves them: the
//! media type picked from `Accept` (406 when none fits), a quoted `ETag` of
//! the document's hash with `If-None-Match` answered by 304, and for v3
//! documents asked for by `?hash=`: the current hash is immutable (cached
//! for a year), a stale one is redirected (301) to the current address.
//! Pure: the caller passes the request's parts and the current time.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Document;
use crate::status::Status;

pub const JSON: &str = "application/json";
/// What client-go puts in `Accept` for the protobuf v2 document.
pub const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The same media type with the version after a dot; Kubernetes accepts both
/// and answers with this one.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A media type a client may ask for, the media type served for it, and the
/// document.
type Choice = (&'static str, &'static str, fn() -> &'static Document);

/// The parts of a request the documents depend on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// The URL path: `/openapi/v2`, `/openapi/v3`, `/openapi/v3/apis/apps/v1`.
    pub path: &'a str,
    /// The `hash` query parameter.
    pub hash: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
}

/// A response: status code, headers and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'static, [u8]>,
}

/// Answers a request for an OpenAPI document, or `None` when the path names
/// none (the caller answers 404).
pub fn serve(req: &Request<'_>, now: SystemTime) -> Option<Reply> {
    let path = req.path.trim_end_matches('/');
    if path == "/openapi/v2" {
        let choices: [Choice; 3] = [
            (JSON, JSON, super::v2_json),
            (V2_PROTOBUF_ACCEPT, V2_PROTOBUF, super::v2_protobuf),
            (V2_PROTOBUF, V2_PROTOBUF, super::v2_protobuf),
        ];
        let Some((content_type, doc)) = negotiate(req.accept, &choices) else {
            return Some(not_acceptable(&[JSON, V2_PROTOBUF_ACCEPT]));
        };
        return Some(document(req, content_type, doc(), false, now));
    }
    if path == "/openapi/v3" {
        let choices: [Choice; 1] = [(JSON, JSON, super::v3_index)];
        let Some((content_type, doc)) = negotiate(req.accept, &choices) else {
            return Some(not_acceptable(&[JSON]));
        };
        return Some(document(req, content_type, doc(), false, now));
    }
    let gv = path.strip_prefix("/openapi/v3/")?;
    let Some(doc) = super::v3_document(gv) else {
        return Some(status_reply(&Status::not_found_path()));
    };
    if let Some(hash) = req.hash.filter(|h| !h.is_empty()) {
        if hash != doc.hash {
            return Some(Reply {
                status: 301,
                headers: vec![("Location", super::v3_url(gv, &doc.hash))],
                body: Cow::Borrowed(b""),
            });
        }
    }
    if negotiate(req.accept, &[(JSON, JSON, ())]).is_none() {
        return Some(not_acceptable(&[JSON]));
    }
    Some(document(req, JSON, doc, req.hash.is_some(), now))
}

/// The first of `choices` (accepted media type, media type served, document)
/// that `accept` allows, in the client's order of preference (`q`), ties
/// in the client's order. No `Accept` allows anything.
fn negotiate<T: Copy>(
    accept: Option<&str>,
    choices: &[(&str, &'static str, T)],
) -> Option<(&'static str, T)> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut ranges: Vec<(f32, &str)> = accept
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let range = parts.next().filter(|r| !r.is_empty())?;
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, range))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, range) in ranges {
        for (accepted, served, doc) in choices {
            let (ty, sub) = accepted.split_once('/').unwrap_or((accepted, ""));
            let matches = match range.split_once('/') {
                Some(("*", "*")) => true,
                Some((t, "*")) => t.eq_ignore_ascii_case(ty),
                Some((t, s)) => t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(sub),
                None => false,
            };
            if matches {
                return Some((served, *doc));
            }
        }
    }
    None
}

fn document(
    req: &Request<'_>,
    content_type: &'static str,
    doc: &'static Document,
    immutable: bool,
    now: SystemTime,
) -> Reply {
    let etag = format!("\"{}\"", doc.hash);
    let mut headers = vec![("Vary", "Accept".to_owned())];
    if immutable {
        headers.push(("Cache-Control", "public, immutable".to_owned()));
        headers.push((
            "Expires",
            http_date(now + Duration::from_secs(365 * 24 * 3600)),
        ));
    }
    let fresh = req.if_none_match.is_some_and(|tags| {
        tags.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str()))
    });
    headers.push(("ETag", etag));
    if fresh {
        return Reply {
            status: 304,
            headers,
            body: Cow::Borrowed(b""),
        };
    }
    headers.push(("Content-Type", content_type.to_owned()));
    Reply {
        status: 200,
        headers,
        body: Cow::Borrowed(&doc.bytes),
    }
}

fn status_reply(s: &Status) -> Reply {
    Reply {
        status: s.code,
        headers: vec![("Content-Type", JSON.to_owned())],
        body: Cow::Owned(s.to_json_bytes()),
    }
}

fn not_acceptable(supported: &[&str]) -> Reply {
    status_reply(&Status::not_acceptable(supported))
}

/// An HTTP date (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days as i64);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01,
/// counting in 400-year eras that start on March 1st (so the leap day is last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month, March = 0
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
