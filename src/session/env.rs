//! Which environment a `run` child gets, pure: the proxy's URL and the session key in place of the
//! real provider keys, which are removed unless the user keeps one with `--pass-env`.

/// What the child's environment is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// `http://127.0.0.1:PORT`
    pub proxy_url: &'a str,
    pub session_key: &'a str,
    pub session_id: &'a str,
    /// Variables that hold real provider keys.
    pub key_vars: &'a [String],
    /// Variables the user asked to keep as they are.
    pub pass_env: &'a [String],
    /// The current `NO_PROXY` and `no_proxy`, to extend rather than replace.
    pub no_proxy: Option<&'a str>,
    pub no_proxy_lower: Option<&'a str>,
    /// Pass-through mode: Anthropic clients keep their own login (a Claude subscription), so
    /// no Anthropic key is set; an Anthropic key would make them use it instead.
    pub passthrough: bool,
}

/// Changes to make to the inherited environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// Variables `run` always sets; `--pass-env` cannot keep their outer values.
pub const SET_BY_RUN: &[&str] = &[
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "OLLAMA_HOST",
    "SMARTPROXY_SESSION_ID",
    "SMARTPROXY_URL",
];

const LOOPBACK: &[&str] = &["127.0.0.1", "localhost", "::1"];

/// How every session key starts; a child's `OPENAI_API_KEY` with it came from an outer `run`.
pub const SESSION_KEY_PREFIX: &str = "sk-smartproxy-";

/// The proxy of the `run` this process runs inside, and the session key that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuterSession {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    pub key: String,
}

/// The enclosing `run`'s proxy, when this process is a `run` started inside one (directly, or
/// through a shim or script): that `run` set `SMARTPROXY_SESSION_ID`, `SMARTPROXY_URL` and a
/// session key. A nested `run` needs no provider credentials of its own (the outer `run`
/// removed them from its environment): it sends everything through the outer proxy. `var`
/// looks up an environment variable.
pub fn outer_session(var: &dyn Fn(&str) -> Option<String>) -> Option<OuterSession> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    set("SMARTPROXY_SESSION_ID")?;
    let url = set("SMARTPROXY_URL")?.trim_end_matches('/').to_owned();
    let key = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
        .iter()
        .filter_map(|name| set(name))
        .find(|key| key.starts_with(SESSION_KEY_PREFIX))?;
    Some(OuterSession { url, key })
}

pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let api = format!("{}/v1", inputs.proxy_url);
    let mut set = vec![
        ("OPENAI_BASE_URL".to_owned(), api.clone()),
        ("OPENAI_API_BASE".to_owned(), api),
        ("OPENAI_API_KEY".to_owned(), inputs.session_key.to_owned()),
        // Anthropic's SDKs and tools append `/v1/messages` themselves.
        ("ANTHROPIC_BASE_URL".to_owned(), inputs.proxy_url.to_owned()),
        ("OLLAMA_HOST".to_owned(), inputs.proxy_url.to_owned()),
        (
            "SMARTPROXY_SESSION_ID".to_owned(),
            inputs.session_id.to_owned(),
        ),
        ("SMARTPROXY_URL".to_owned(), inputs.proxy_url.to_owned()),
    ];
    if !inputs.passthrough {
        set.push((
            "ANTHROPIC_API_KEY".to_owned(),
            inputs.session_key.to_owned(),
        ));
    }
    // HTTP(S)_PROXY must not capture the child's calls to the loopback proxy.
    set.push(("NO_PROXY".to_owned(), with_loopback(inputs.no_proxy)));
    set.push((
        "no_proxy".to_owned(),
        with_loopback(inputs.no_proxy_lower.or(inputs.no_proxy)),
    ));
    let remove = inputs
        .key_vars
        .iter()
        .filter(|var| !inputs.pass_env.contains(var) && !set.iter().any(|(name, _)| name == *var))
        .cloned()
        .collect();
    Plan { set, remove }
}

fn with_loopback(existing: Option<&str>) -> String {
    let mut entries: Vec<String> = existing
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    for host in LOOPBACK {
        if !entries.iter().any(|e| e == host) {
            entries.push((*host).to_owned());
        }
    }
    entries.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        key_vars: &'a [String],
        pass_env: &'a [String],
        no_proxy: Option<&'a str>,
    ) -> Inputs<'a> {
        Inputs {
            proxy_url: "http://127.0.0.1:5555",
            session_key: "sk-session",
            session_id: "abc",
            key_vars,
            pass_env,
            no_proxy,
            no_proxy_lower: None,
            passthrough: false,
        }
    }

    fn value<'a>(plan: &'a Plan, name: &str) -> Option<&'a str> {
        plan.set
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn points_the_child_at_the_proxy_with_the_session_key() {
        let keys = vec![
            "OPENAI_API_KEY".to_owned(),
            "ANTHROPIC_API_KEY".to_owned(),
            "MY_KEY".to_owned(),
        ];
        let plan = plan(&inputs(&keys, &[], None));
        assert_eq!(
            value(&plan, "OPENAI_BASE_URL"),
            Some("http://127.0.0.1:5555/v1")
        );
        assert_eq!(
            value(&plan, "OPENAI_API_BASE"),
            Some("http://127.0.0.1:5555/v1")
        );
        assert_eq!(value(&plan, "OPENAI_API_KEY"), Some("sk-session"));
        assert_eq!(value(&plan, "SMARTPROXY_SESSION_ID"), Some("abc"));
        assert_eq!(value(&plan, "NO_PROXY"), Some("127.0.0.1,localhost,::1"));
        assert_eq!(
            value(&plan, "ANTHROPIC_BASE_URL"),
            Some("http://127.0.0.1:5555")
        );
        assert_eq!(value(&plan, "ANTHROPIC_API_KEY"), Some("sk-session"));
        assert_eq!(
            value(&plan, "ANTHROPIC_AUTH_TOKEN"),
            None,
            "one Anthropic credential: the SDKs warn when both are set"
        );
        assert_eq!(value(&plan, "OLLAMA_HOST"), Some("http://127.0.0.1:5555"));
        // Variables `run` sets are replaced, not removed; the others are removed.
        assert_eq!(plan.remove, vec!["MY_KEY".to_owned()]);
    }

    #[test]
    fn pass_env_keeps_a_key_and_no_proxy_is_extended() {
        let keys = vec!["DEEPSEEK_API_KEY".to_owned(), "MY_KEY".to_owned()];
        let pass = vec!["MY_KEY".to_owned()];
        let plan = plan(&inputs(&keys, &pass, Some("corp.example, localhost")));
        assert_eq!(plan.remove, vec!["DEEPSEEK_API_KEY".to_owned()]);
        assert_eq!(
            value(&plan, "NO_PROXY"),
            Some("corp.example,localhost,127.0.0.1,::1")
        );
        assert_eq!(
            value(&plan, "no_proxy"),
            Some("corp.example,localhost,127.0.0.1,::1")
        );
    }

    #[test]
    fn a_run_inside_a_run_finds_the_outer_proxy_and_its_session_key() {
        let outer = |vars: &'static [(&'static str, &'static str)]| {
            outer_session(&move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        assert_eq!(
            outer(&[
                ("SMARTPROXY_SESSION_ID", "abc"),
                ("SMARTPROXY_URL", "http://127.0.0.1:5555/"),
                ("OPENAI_API_KEY", "sk-smartproxy-0123"),
            ]),
            Some(OuterSession {
                url: "http://127.0.0.1:5555".to_owned(),
                key: "sk-smartproxy-0123".to_owned(),
            })
        );
        // The OpenAI variable replaced by a real key: the Anthropic one still holds the session's.
        assert_eq!(
            outer(&[
                ("SMARTPROXY_SESSION_ID", "abc"),
                ("SMARTPROXY_URL", "http://127.0.0.1:5555"),
                ("OPENAI_API_KEY", "sk-real"),
                ("ANTHROPIC_API_KEY", "sk-smartproxy-0123"),
            ])
            .map(|o| o.key),
            Some("sk-smartproxy-0123".to_owned())
        );
        // Not inside a run, or no session key to open the outer proxy with.
        assert_eq!(outer(&[("OPENAI_API_KEY", "sk-smartproxy-0123")]), None);
        assert_eq!(
            outer(&[
                ("SMARTPROXY_SESSION_ID", "abc"),
                ("SMARTPROXY_URL", "http://127.0.0.1:5555"),
                ("OPENAI_API_KEY", "sk-real"),
            ]),
            None
        );
    }

    #[test]
    fn passthrough_sets_no_anthropic_key_and_removes_the_real_one() {
        let keys = vec![
            "ANTHROPIC_API_KEY".to_owned(),
            "ANTHROPIC_AUTH_TOKEN".to_owned(),
        ];
        let plan = plan(&Inputs {
            passthrough: true,
            ..inputs(&keys, &[], None)
        });
        assert_eq!(value(&plan, "ANTHROPIC_API_KEY"), None);
        assert_eq!(
            value(&plan, "ANTHROPIC_BASE_URL"),
            Some("http://127.0.0.1:5555")
        );
        assert_eq!(value(&plan, "OPENAI_API_KEY"), Some("sk-session"));
        // Claude Code would prefer an API key to its own login: neither may reach it.
        assert_eq!(plan.remove, keys);
    }
}
