//! Whether a provider's successful (2xx) whole reply is a reply at all: a body cut mid-JSON,
//! an HTML gateway page, an empty body or an error object sent with status 200 must not be
//! passed off (and billed) as an answer.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::openai::UsageView;

/// What is wrong with a 2xx body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyFault {
    /// The body is empty or ends mid-JSON.
    Truncated,
    /// The body is not a JSON object, or is an error object; the text says which.
    Malformed(String),
}

/// The top-level fields that tell a reply from an error, in every format smartproxy reads:
/// `choices` (chat, completions), `output` (Responses), `data` (embeddings), `content`
/// (Anthropic Messages); and what the ledger reads from a chat reply, typed as `M`, `U`, `S`:
/// as a chat reply has them (`ChatShape`, one pass for almost every reply) or kept raw
/// (`RawShape`), so that a field of another type (a native format's usage) never fails the check.
#[derive(Deserialize)]
// Not derive's own bound, which asks `M: Default` for the `default` fields; `Option` is enough.
#[serde(bound(deserialize = "M: Deserialize<'de>, U: Deserialize<'de>, S: Deserialize<'de>"))]
struct Shape<'a, M, U, S> {
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    choices: Option<IgnoredAny>,
    #[serde(default)]
    output: Option<IgnoredAny>,
    #[serde(default)]
    data: Option<IgnoredAny>,
    #[serde(default)]
    content: Option<IgnoredAny>,
    #[serde(default)]
    model: Option<M>,
    #[serde(default)]
    usage: Option<U>,
    #[serde(default)]
    service_tier: Option<S>,
}

type ChatShape<'a> = Shape<'a, String, super::openai::Usage, String>;
type RawShape<'a> = Shape<'a, &'a RawValue, &'a RawValue, &'a RawValue>;

impl<M, U, S> Shape<'_, M, U, S> {
    /// An error object in place of a reply.
    fn is_error_only(&self) -> bool {
        let has_reply = self.choices.is_some()
            || self.output.is_some()
            || self.data.is_some()
            || self.content.is_some();
        (self.kind.as_deref() == Some("error") || self.error.is_some()) && !has_reply
    }
}

/// A 2xx body that is a reply, with the fields its usage is read from.
#[derive(Debug)]
pub enum CheckedReply<'a> {
    /// Read as a chat reply in the check's pass.
    Read(UsageView),
    /// Kept raw: a field was not what a chat reply holds there.
    Raw {
        model: Option<&'a RawValue>,
        usage: Option<&'a RawValue>,
        service_tier: Option<&'a RawValue>,
    },
}

impl CheckedReply<'_> {
    /// The reply's model and usage as a chat reply has them; all empty if one of them is not
    /// what a chat reply holds there (as reading the whole body as a `UsageView` would give).
    pub fn usage_view(self) -> UsageView {
        fn read<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Option<Option<T>> {
            match raw {
                None => Some(None),
                Some(raw) => serde_json::from_str(raw.get()).ok(),
            }
        }
        let (model, usage, service_tier) = match self {
            CheckedReply::Read(view) => return view,
            CheckedReply::Raw {
                model,
                usage,
                service_tier,
            } => (model, usage, service_tier),
        };
        match (read(model), read(usage), read(service_tier)) {
            (Some(model), Some(usage), Some(service_tier)) => UsageView {
                model,
                usage,
                service_tier,
            },
            _ => UsageView::default(),
        }
    }
}

/// Checks a 2xx body. Objects without the usual fields pass (some endpoints answer with
/// others, e.g. a token count); only an error in their place fails.
pub fn check(body: &[u8]) -> Result<CheckedReply<'_>, ReplyFault> {
    // One pass for a chat reply; anything else is read again below, which names the fault.
    if let Ok(chat) = serde_json::from_slice::<ChatShape<'_>>(body)
        && !chat.is_error_only()
    {
        return Ok(CheckedReply::Read(UsageView {
            model: chat.model,
            usage: chat.usage,
            service_tier: chat.service_tier,
        }));
    }
    let shape: RawShape<'_> = match serde_json::from_slice(body) {
        Ok(shape) => shape,
        Err(err) if err.is_eof() => return Err(ReplyFault::Truncated),
        Err(err) if err.is_data() => {
            return Err(ReplyFault::Malformed(
                "the body is JSON but not an object".to_owned(),
            ));
        }
        Err(_) => return Err(ReplyFault::Malformed(not_json(body))),
    };
    if shape.is_error_only() {
        let message = shape
            .error
            .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
            .and_then(|error| match error {
                serde_json::Value::String(text) => Some(text),
                other => other["message"].as_str().map(str::to_owned),
            })
            .unwrap_or_else(|| "no message".to_owned());
        return Err(ReplyFault::Malformed(format!(
            "the provider answered 200 with an error instead of a reply: {message}"
        )));
    }
    Ok(CheckedReply::Raw {
        model: shape.model,
        usage: shape.usage,
        service_tier: shape.service_tier,
    })
}

/// Names what came instead of JSON, without quoting it (it may be anything).
fn not_json(body: &[u8]) -> String {
    let start = body.trim_ascii_start();
    let html = start.get(..5).is_some_and(|head| {
        head.eq_ignore_ascii_case(b"<!doc") || head.eq_ignore_ascii_case(b"<html")
    });
    if html {
        "the body is an HTML page, not JSON (a gateway or proxy answered in the provider's place)"
            .to_owned()
    } else {
        "the body is not JSON".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_pass_and_broken_bodies_fail() {
        let fine: &[&[u8]] = &[
            br#"{"id":"c","choices":[{"message":{"content":"hi"}}]}"#,
            br#"{"id":"r","object":"response","output":[],"error":null}"#,
            br#"{"object":"list","data":[]}"#,
            br#"{"type":"message","content":[]}"#,
            br#"{"input_tokens":12}"#,
        ];
        for body in fine {
            assert_eq!(
                check(body).map(|_| ()),
                Ok(()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [&b""[..], b"   ", br#"{"id":"c","choices":[{"mess"#] {
            assert!(matches!(check(body), Err(ReplyFault::Truncated)));
        }
        let malformed: &[(&[u8], &str)] = &[
            (
                b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
                "HTML",
            ),
            (b"<html>oops</html>", "HTML"),
            (b"upstream connect error", "not JSON"),
            (b"[1,2]", "not an object"),
            (
                br#"{"error":{"message":"quota gone","type":"x"}}"#,
                "quota gone",
            ),
            (br#"{"error":"plain text"}"#, "plain text"),
            (
                br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
                "busy",
            ),
        ];
        for (body, says) in malformed {
            match check(body) {
                Err(ReplyFault::Malformed(text)) => assert!(text.contains(says), "{text}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn the_check_reads_model_and_usage_in_the_same_pass() {
        let body = br#"{"model":"m-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7},"service_tier":"flex"}"#;
        let Ok(checked) = check(body) else {
            panic!("a reply fails the check")
        };
        // A chat reply is read in the check's own pass, not parsed a second time.
        assert!(matches!(checked, CheckedReply::Read(_)), "{checked:?}");
        let head = checked.usage_view();
        let whole: UsageView = serde_json::from_slice(body).unwrap_or_default();
        assert_eq!(head.model.as_deref(), Some("m-1"));
        assert_eq!(head.service_tier.as_deref(), Some("flex"));
        assert_eq!(format!("{:?}", head.usage), format!("{:?}", whole.usage));
        assert!(head.usage.is_some());
        // A field of another type empties the lot, as reading the whole body would.
        let body = br#"{"model":7,"choices":[],"usage":{"prompt_tokens":3}}"#;
        assert!(matches!(check(body), Ok(CheckedReply::Raw { .. })));
        let head = check(body).map(|c| c.usage_view());
        let Ok(head) = head else {
            panic!("a reply fails the check")
        };
        assert!(head.model.is_none() && head.usage.is_none());
    }
}
