//! `smartproxy run`'s flags: clap turns these doc comments into `run --help`.

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    Table,
    Json,
    None,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The command gets OPENAI_BASE_URL, OPENAI_API_BASE, ANTHROPIC_BASE_URL and OLLAMA_HOST pointing \
at the session's proxy, OPENAI_API_KEY and ANTHROPIC_API_KEY set to a session key only that proxy accepts, \
SMARTPROXY_SESSION_ID and SMARTPROXY_URL. Real credentials (OPENAI_API_KEY, ANTHROPIC_API_KEY, \
ANTHROPIC_AUTH_TOKEN, DEEPSEEK_API_KEY, the other common providers' key variables and every api_key_env of \
the config) are removed from its environment unless kept with --pass-env.\n\nExit status: the command's own, 128+N when signal N \
ended it, 127 when it could not be found, 126 when it could not be executed. When the command \
succeeded but a cost gate did not: 3 over --max-cost, 4 over --max-ratio of --baseline (a failed command's own \
status wins; the gate's line is printed either way).\n\nExamples:\n  smartproxy run --mock -- \
python agent.py\n  smartproxy run --budget 0.50 --tag nightly -- ./eval.sh\n  smartproxy run --passthrough -- claude   \
# Claude Code on its Pro/Max subscription\n  smartproxy run --summary json --summary-file summary.json -- \
python agent.py\n  smartproxy run --max-cost 0.25 -- ./eval.sh          # CI: fail when the eval cost more\n  \
smartproxy run --save-baseline base.json -- ./eval.sh   # store today's figures\n  \
smartproxy run --baseline base.json --max-ratio 1.5 -- ./eval.sh\n  \
smartproxy run --record agent.cassette.jsonl -- python agent.py   # then in CI, offline:\n  \
smartproxy run --replay agent.cassette.jsonl -- python agent.py"
)]
pub struct RunArgs {
    /// Session budget in USD: requests that would exceed it are fitted to what is left, or
    /// downgraded or refused with 429 (`budget.on_exceed`)
    /// [env: SMARTPROXY_BUDGET_SESSION_LIMIT_USD; config: budget.session_usd].
    #[arg(long, value_name = "USD")]
    pub budget: Option<f64>,

    /// A name for this session in stats and session lists.
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,

    /// The project this session's cost belongs to (`stats --by project`, `budget.projects`)
    /// [config: project; default: the git repository's folder name].
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,

    /// Serve every request from the built-in mock provider: no key, no network, nothing spent
    /// (costs shown are simulated at the requested model's list price).
    #[arg(long)]
    pub mock: bool,

    /// How to print the cost summary on stderr when the command exits.
    #[arg(long, value_enum, default_value = "table", value_name = "FORMAT")]
    pub summary: SummaryFormat,

    /// Write the summary to this file instead of stderr (with `--summary json`, the file holds
    /// exactly one JSON object; warnings stay on stderr).
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,

    /// Apply a tool's preset: its session tag, budget and extra variables unless flags say
    /// otherwise (built in: claude, codex, aider, llm, python; more under `presets:` in the
    /// config). The shims of `smartproxy shim install` use it. Without it, a command whose
    /// program has a preset's name (`codex`, `claude`...; not `python`) gets that preset.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,

    /// Claude Code with a subscription (Pro/Max): no ANTHROPIC_API_KEY for the command, which
    /// keeps its own login; its requests go to Anthropic with its own credential, recorded at
    /// their notional list-price cost [config: passthrough: anthropic].
    #[arg(long)]
    pub passthrough: bool,

    /// Capture this session's request and response bodies (opt-in; read them with
    /// `smartproxy capture show REQUEST_ID`); encrypted when SMARTPROXY_CAPTURE_KEY is set
    /// [env: SMARTPROXY_CAPTURE_ENABLED; config: capture.enabled].
    #[arg(long)]
    pub capture: bool,

    /// Show the live dashboard for this session while the command runs (`smartproxy dash`
    /// keys). The command's stdout and stderr go to a log file whose path is printed before
    /// and after; its stdin is closed. Ctrl-C interrupts the command; q closes the dashboard
    /// (the command keeps running). After the command exits the dashboard stays until q, or
    /// closes by itself when stdin is not a terminal.
    #[arg(long)]
    pub dash: bool,

    /// Cost gate: after the command exits, exit 3 when the session (the runs inside it
    /// included; simulated mock costs count, as for --budget) spent more than USD. Unlike
    /// --budget, nothing is refused while the command runs.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,

    /// Cost gate: compare the session's cost and tokens with a stored summary (the JSON of
    /// `--summary json` or `--save-baseline`) and exit 4 when either grew past --max-ratio,
    /// naming the models and request kinds that grew.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// How much more than the --baseline the session may cost or use in tokens (1.5: half
    /// again).
    #[arg(
        long,
        value_name = "RATIO",
        default_value_t = 1.5,
        requires = "baseline"
    )]
    pub max_ratio: f64,

    /// Write the session's JSON summary to FILE as a baseline for a later --baseline (whatever
    /// --summary prints).
    #[arg(long, value_name = "FILE")]
    pub save_baseline: Option<PathBuf>,

    /// Print on stderr, before the command starts, what its earlier runs cost and took (as
    /// `smartproxy quote` does: the same program, and --tag and --project when given).
    #[arg(long)]
    pub quote: bool,
    /// Record every request of the session and the reply the command got (streams too) to this
    /// cassette file (JSON Lines, created 0600, appended to when it exists). Bodies are stored:
    /// the built-in key shapes and `cassette.redact` patterns are replaced, headers never
    /// written. Replay it with `--replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// With --record: keep each stream chunk's time, so a replay paces the stream as it came.
    #[arg(long, requires = "record")]
    pub record_timing: bool,

    /// Serve the session from this cassette: no network, no provider key, cost 0 (the ledger
    /// shows provider `cassette`). Identical requests get their replies in recorded order; a
    /// request not in the cassette fails with `cassette_miss` naming the first field that
    /// differs (e.g. `messages[1].content`).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// With --replay: what a request not in the cassette gets: `fail` (a 404 `cassette_miss`)
    /// or `passthrough` (sent to the provider, and added to the cassette with --record).
    #[arg(
        long,
        value_enum,
        default_value = "fail",
        value_name = "WHAT",
        requires = "replay"
    )]
    pub replay_miss: crate::cassette::OnMiss,

    /// Keep this provider key variable in the command's environment (repeatable).
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,

    /// The command to run, after `--`.
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}
