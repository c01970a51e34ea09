# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_smartproxy_global_optspecs
    string join \n config= log-level= h/help V/version
end

function __fish_smartproxy_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_smartproxy_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_smartproxy_using_subcommand
    set -l cmd (__fish_smartproxy_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c smartproxy -n "__fish_smartproxy_needs_command" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_needs_command" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "run" -d 'Run a command behind a private, budgeted, recorded proxy'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "daemon" -d 'The persistent proxy for editors and IDEs (`start` is an alias)'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "dash" -d 'Live terminal dashboard: sessions, requests as they come, totals, breakers'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "stats" -d 'Show what requests cost, grouped by model, provider, session or tag'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "cost" -d 'What the sessions on a commit, a range of commits or a branch cost (from the git state every `run` records)'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "hooks" -d 'Git hooks: `hooks install` adds an `AI-Cost:` trailer to every commit message'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "resume" -d 'Let a session the loop breaker stopped continue (`run`\'s or the daemon\'s)'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "sessions" -d 'List recent sessions, sub-sessions under their parents'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "quote" -d 'What a command\'s earlier runs cost and took (p50, p90), before running it again'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "report" -d 'Spend per day, per month, or per 5-hour block (subscription windows), as ccusage shows'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "status" -d 'One line of live cost (this `run` session, or today) for shell prompts and statuslines'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "export" -d 'Write the ledger\'s requests as CSV or JSON Lines (streamed, any size)'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "prune" -d 'Delete ledger rows older than an age (a dry run unless --execute)'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "config" -d 'Check and inspect configuration'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "budget" -d 'Budget limits, what is spent against them and what is left'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "cache" -d 'Inspect or clear the response cache'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "capture" -d 'Read the opt-in capture of request and response bodies (capture.enabled, off by default): show one request\'s bodies, stats, clear'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "route" -d 'Explain routing decisions without sending anything'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "request" -d 'Send one request from a file through the configured routing; print the reply on stdout and the routing headers on stderr'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "keys" -d 'Client keys for the daemon: create, list, revoke'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "providers" -d 'Check that the configured providers answer and accept their keys'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "prices" -d 'Model prices: show them, or install a newer LiteLLM price file as an overlay'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "ledger" -d 'Move the ledger: `ledger migrate --to postgres://...` copies a SQLite ledger into PostgreSQL'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "doctor" -d 'Check the config, the ledger, the daemon and the listeners; print a fix for each problem'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "shim" -d 'Shims: scripts that run a tool under `smartproxy run --preset TOOL` whenever you call it'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "env" -d 'Print the variables that point tools started outside `run` at the daemon, for `eval`'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "ui" -d 'The web dashboard over the ledger on a loopback port; `ui token` prints a login token'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c smartproxy -n "__fish_smartproxy_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l budget -d 'Session budget in USD: requests that would exceed it are fitted to what is left, or downgraded or refused with 429 (`budget.on_exceed`) [env: SMARTPROXY_BUDGET_SESSION_LIMIT_USD; config: budget.session_usd]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l tag -d 'A name for this session in stats and session lists' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l project -d 'The project this session\'s cost belongs to (`stats --by project`, `budget.projects`) [config: project; default: the git repository\'s folder name]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l summary -d 'How to print the cost summary on stderr when the command exits' -r -f -a "table\t''
json\t''
none\t''"
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l summary-file -d 'Write the summary to this file instead of stderr (with `--summary json`, the file holds exactly one JSON object; warnings stay on stderr)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l preset -d 'Apply a tool\'s preset: its session tag, budget and extra variables unless flags say otherwise (built in: claude, codex, aider, llm, python; more under `presets:` in the config). The shims of `smartproxy shim install` use it. Without it, a command whose program has a preset\'s name (`codex`, `claude`...; not `python`) gets that preset' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l max-cost -d 'Cost gate: after the command exits, exit 3 when the session (the runs inside it included; simulated mock costs count, as for --budget) spent more than USD. Unlike --budget, nothing is refused while the command runs' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l baseline -d 'Cost gate: compare the session\'s cost and tokens with a stored summary (the JSON of `--summary json` or `--save-baseline`) and exit 4 when either grew past --max-ratio, naming the models and request kinds that grew' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l max-ratio -d 'How much more than the --baseline the session may cost or use in tokens (1.5: half again)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l save-baseline -d 'Write the session\'s JSON summary to FILE as a baseline for a later --baseline (whatever --summary prints)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l record -d 'Record every request of the session and the reply the command got (streams too) to this cassette file (JSON Lines, created 0600, appended to when it exists). Bodies are stored: the built-in key shapes and `cassette.redact` patterns are replaced, headers never written. Replay it with `--replay`' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l replay -d 'Serve the session from this cassette: no network, no provider key, cost 0 (the ledger shows provider `cassette`). Identical requests get their replies in recorded order; a request not in the cassette fails with `cassette_miss` naming the first field that differs (e.g. `messages[1].content`)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l replay-miss -d 'With --replay: what a request not in the cassette gets: `fail` (a 404 `cassette_miss`) or `passthrough` (sent to the provider, and added to the cassette with --record)' -r -f -a "fail\t'Refuse it with a `cassette_miss` error naming where it differs from the nearest recorded request'
passthrough\t'Send it to the provider (and, with `--record`, add it to the cassette)'"
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l pass-env -d 'Keep this provider key variable in the command\'s environment (repeatable)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l mock -d 'Serve every request from the built-in mock provider: no key, no network, nothing spent (costs shown are simulated at the requested model\'s list price)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l passthrough -d 'Claude Code with a subscription (Pro/Max): no ANTHROPIC_API_KEY for the command, which keeps its own login; its requests go to Anthropic with its own credential, recorded at their notional list-price cost [config: passthrough: anthropic]'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l capture -d 'Capture this session\'s request and response bodies (opt-in; read them with `smartproxy capture show REQUEST_ID`); encrypted when SMARTPROXY_CAPTURE_KEY is set [env: SMARTPROXY_CAPTURE_ENABLED; config: capture.enabled]'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l dash -d 'Show the live dashboard for this session while the command runs (`smartproxy dash` keys). The command\'s stdout and stderr go to a log file whose path is printed before and after; its stdin is closed. Ctrl-C interrupts the command; q closes the dashboard (the command keeps running). After the command exits the dashboard stays until q, or closes by itself when stdin is not a terminal'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l quote -d 'Print on stderr, before the command starts, what its earlier runs cost and took (as `smartproxy quote` does: the same program, and --tag and --project when given)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -l record-timing -d 'With --record: keep each stream chunk\'s time, so a replay paces the stream as it came'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand run" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l listen -d 'Public listener [env: SMARTPROXY_LISTEN; config: listen; default: 127.0.0.1:4100]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l admin-listen -d 'Admin listener [env: SMARTPROXY_ADMIN_LISTEN; default: 127.0.0.1:4101]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l watch -d 'Reload when the config file changes (SIGHUP and POST /admin/reload always reload)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l detach -d 'Run in the background; logs go to the data dir (see `daemon status`)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -l dash -d 'Show the live dashboard (`smartproxy dash`) in this terminal while the daemon serves; its logs go to a file in the data dir (path printed). Quitting the dashboard (q) stops the daemon'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -f -a "status" -d 'Is the daemon running? Where does it listen?'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -f -a "stop" -d 'Stop the daemon gracefully (SIGTERM; requests in flight finish)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -f -a "install" -d 'Run the daemon at login: write a systemd user unit (Linux) or a launchd agent (macOS) that restarts it on failure. Keys are never written into it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and not __fish_seen_subcommand_from status stop install help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from status" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from status" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from status" -l json -d 'Print JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from stop" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from install" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from install" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from install" -l print -d 'Print the unit (Linux: systemd; macOS: launchd plist) on stdout instead of writing it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "status" -d 'Is the daemon running? Where does it listen?'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop the daemon gracefully (SIGTERM; requests in flight finish)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "install" -d 'Run the daemon at login: write a systemd user unit (Linux) or a launchd agent (macOS) that restarts it on failure. Keys are never written into it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand dash" -l session -d 'Show only this session (an id or an unambiguous prefix) and the runs started inside it' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand dash" -l filter -d 'Start with this text filter (as typed after `/`)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand dash" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand dash" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand dash" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand dash" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l session -d 'Only this session (a full id or a unique prefix, as `smartproxy sessions` shows)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l since -d 'Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `90m`, `24h`, `7d`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l until -d 'Only requests before DATE (same forms as --since): `--since 2026-11-01 --until 2026-12-01` is November' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l by -d 'How to group the rows' -r -f -a "model\t'The model that answered (else the one asked for)'
provider\t''
session\t'The `run` or daemon session (nested runs apart)'
tag\t'The session\'s tag'
key\t'The client key: a daemon session\'s tag; `-` for requests of `run` sessions'
user\t'The key\'s user (team mode); `-` where none is known, as always on a SQLite ledger'
team\t'The key\'s team (team mode); `-` where none is known, as always on a SQLite ledger'
project\t'The session\'s project (`run --project`, the config\'s `project:`, else the git repository\'s folder name); `-` where none is known'
branch\t'The git branch the session started on (`(detached)` for a detached HEAD); `-` outside a repository. A session whose HEAD moved counts under where it started'
commit\t'The commit HEAD was on when the session started; `-` outside a repository. A session that committed counts under the commit it started from (`cost --commit` counts it under both)'
hour\t'The local hour a request started in (`2026-12-07 10:00`), oldest first'
day\t'The local day, oldest first'
week\t'The local week, named by its Monday, oldest first'
month\t'The local month, oldest first'"
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l last -d 'Only the most recent session'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l today -d 'Only requests since local midnight'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -l json -d 'Print JSON instead of a table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand stats" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l commit -d 'Sessions whose HEAD at start or end was this commit (any revision git understands)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l branch -d 'Sessions that started or ended on this branch (in this repository\'s working trees)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l range -d 'Sessions whose HEAD at start or end was one of `git rev-list A..B`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l json -d 'Print JSON: the selection, the total and every session with its figures'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -l trailer -d 'Print one `AI-Cost: $X.XX (N requests, M sessions)` line, or nothing when no session matches (for commit messages)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cost" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -f -a "install" -d 'Write `.git/hooks/prepare-commit-msg` (where git looks for hooks: `core.hooksPath` and linked worktrees respected) that adds `AI-Cost: $X.XX (N requests, M sessions)` to each commit message'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -f -a "uninstall" -d 'Remove the hook `hooks install` wrote (a hook smartproxy did not write is left alone)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from install" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from install" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from install" -l force -d 'Replace an existing `prepare-commit-msg` hook that smartproxy did not write'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write `.git/hooks/prepare-commit-msg` (where git looks for hooks: `core.hooksPath` and linked worktrees respected) that adds `AI-Cost: $X.XX (N requests, M sessions)` to each commit message'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Remove the hook `hooks install` wrote (a hook smartproxy did not write is left alone)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand resume" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand resume" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand resume" -l list -d 'List the sessions the loop breaker has stopped instead'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand resume" -l json -d 'Print the result as JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand resume" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand resume" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand sessions" -l limit -d 'How many recent sessions to show; 0 shows them all' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand sessions" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand sessions" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand sessions" -l json -d 'Print JSON instead of a table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand sessions" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand sessions" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -l tag -d 'Only sessions with this tag (`run --tag`)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -l project -d 'Only sessions of this project (`run --project`, the config\'s `project:`, or the git repository\'s folder name)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -l last -d 'How many of the most recent finished sessions to read' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -l json -d 'Print JSON instead of a line'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand quote" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -f -a "daily" -d 'Spend per local day, oldest first'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -f -a "monthly" -d 'Spend per local month, oldest first'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -f -a "blocks" -d 'Spend per 5-hour block, oldest first; the open one with its burn rate and projection'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and not __fish_seen_subcommand_from daily monthly blocks help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -l since -d 'Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `24h`, `7d`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -l until -d 'Only requests before DATE (same forms as --since)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -l json -d 'Print JSON instead of a table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from daily" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -l since -d 'Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `24h`, `7d`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -l until -d 'Only requests before DATE (same forms as --since)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -l json -d 'Print JSON instead of a table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from monthly" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -l since -d 'Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `24h`, `7d`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -l until -d 'Only requests before DATE (same forms as --since)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -l json -d 'Print JSON instead of a table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from blocks" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "daily" -d 'Spend per local day, oldest first'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "monthly" -d 'Spend per local month, oldest first'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "blocks" -d 'Spend per 5-hour block, oldest first; the open one with its burn rate and projection'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -l session -d 'This session instead of the one in SMARTPROXY_SESSION_ID (a full id or a unique prefix)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -l short -d 'Only the amount spent and, when there is a budget, what is left: `$0.42 ($1.58 left)`'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -l line -d 'One short line for a prompt or Claude Code\'s status line: spent, burn rate, model and time left: `$0.42 · $0.52/h · gpt-4o · 3h10m left`. Coloured only on a terminal'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -l json -d 'Print JSON instead of a line'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand status" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l format -d 'Output format' -r -f -a "csv\t'Comma-separated values with a header row (RFC 4180 quoting)'
jsonl\t'One JSON object per line'"
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l since -d 'Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `24h`, `7d`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l until -d 'Only requests before DATE (same forms as --since)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l session -d 'Only this session and the runs nested in it (a full id or a unique prefix)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -s o -l output -d 'Write to FILE instead of stdout (written beside it first, renamed when complete); `-` is stdout' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -l last -d 'Only the most recent session'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand export" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -l older-than -d 'Delete rows older than AGE (`30d`, `12h`, `5m`: exactly that long before now) or from before a date (`2026-10-01`, local midnight). Default: retention.max_age_days from the config' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -l execute -d 'Delete for real; without it, only say what would be deleted'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -l vacuum -d 'After deleting, VACUUM the ledger to shrink the file'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -l json -d 'Print JSON instead of sentences'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prune" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -f -a "validate" -d 'Check a config file: every error is shown with its file, line and key. Exits 1 when the config is invalid'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -f -a "show" -d 'Show the configuration in effect (file, listener, ledger, providers, `pricing:` overrides in USD per million tokens; never keys)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and not __fish_seen_subcommand_from validate show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from validate" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from validate" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from validate" -l json -d 'Print the result as JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from validate" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from show" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print as JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check a config file: every error is shown with its file, line and key. Exits 1 when the config is invalid'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the configuration in effect (file, listener, ledger, providers, `pricing:` overrides in USD per million tokens; never keys)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand budget" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand budget" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand budget" -l json -d 'Print JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand budget" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand budget" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -f -a "stats" -d 'Entries, size, hits and what the hits saved'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -f -a "clear" -d 'Delete entries: all of them, or one model\'s'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and not __fish_seen_subcommand_from stats clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from stats" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from stats" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from stats" -l json -d 'Print JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from stats" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from stats" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from clear" -l model -d 'Only this model\'s entries' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from clear" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from clear" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from clear" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "stats" -d 'Entries, size, hits and what the hits saved'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Delete entries: all of them, or one model\'s'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -f -a "show" -d 'Print a request\'s captured bodies: both, each under a heading, or one of them as it was (for piping to `jq`). Sealed bodies need SMARTPROXY_CAPTURE_KEY'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -f -a "stats" -d 'Where the captures are, how many and how large'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -f -a "clear" -d 'Delete every captured body'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and not __fish_seen_subcommand_from show stats clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from show" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from show" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from show" -l request -d 'Only the request body, exactly as captured'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from show" -l response -d 'Only the response body, exactly as captured'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from stats" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from stats" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from stats" -l json -d 'Print JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from stats" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from stats" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from clear" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from clear" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from clear" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print a request\'s captured bodies: both, each under a heading, or one of them as it was (for piping to `jq`). Sealed bodies need SMARTPROXY_CAPTURE_KEY'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from help" -f -a "stats" -d 'Where the captures are, how many and how large'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Delete every captured body'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand capture; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and not __fish_seen_subcommand_from explain help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and not __fish_seen_subcommand_from explain help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and not __fish_seen_subcommand_from explain help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and not __fish_seen_subcommand_from explain help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and not __fish_seen_subcommand_from explain help" -f -a "explain" -d 'Show which targets a request would go to, in order, and why others are skipped. Sends nothing'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and not __fish_seen_subcommand_from explain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -l file -d 'A Chat Completions request body (JSON)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -l tag -d 'Pretend the request comes from a `run` session with this tag' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -l source -d 'Pretend the request comes from this client address' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -l json -d 'Print JSON instead of text'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from explain" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Show which targets a request would go to, in order, and why others are skipped. Sends nothing'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand request" -l file -d 'A Chat Completions request body (JSON); `stream: true` prints events as they arrive' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand request" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand request" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand request" -l mock -d 'Serve it from the built-in mock provider'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand request" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand request" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -f -a "create" -d 'Make a new client key and print it once on stdout: only its SHA-256 digest is kept, so copy it now (a lost key is revoked and replaced, never shown again)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -f -a "list" -d 'List keys: name, user and team (team ledger), limits, when made, when revoked. Never the keys or their digests'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -f -a "revoke" -d 'Revoke a key by name: on a team ledger every daemon refuses it within seconds; on a SQLite ledger the daemon refuses it after its next reload or restart'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -f -a "limit" -d 'Team ledger only: set a user\'s or a team\'s own daily, weekly and monthly limits and rolling windows in USD, which hold every key of that user or team together (besides each key\'s own). Every daemon on the ledger enforces a change within seconds. Without a limit flag, shows the limits set'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke limit help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l name -d 'The key\'s name (the same as NAME)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l user -d 'Team ledger only: the person who holds the key (letters, digits, `-`, `_`, `.`, `@`), e.g. `ana` or `ana@example.com`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l team -d 'Team ledger only: the holder\'s team, e.g. `search`' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l daily -d 'A daily spending limit in USD for this key (`--budget-daily` is the same)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l monthly -d 'Team ledger only: a monthly spending limit in USD for this key' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l weekly -d 'Team ledger only: a weekly spending limit in USD for this key (weeks start on Monday, in `budget.utc_offset`\'s calendar)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l window -d 'Team ledger only: a rolling window, `EVERY=USD`: the key\'s spend of any `EVERY` (`90m`, `5h`, `7d`; 1 minute to 31 days) stays under USD. Repeat for several' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -l json -d 'Print the key and what it was made with as JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from list" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from list" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from revoke" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from revoke" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l user -d 'The user whose limits to set (as in `keys create --user`)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l team -d 'The team whose limits to set (as in `keys create --team`)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l daily -d 'The daily limit in USD (0 stops all spending)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l monthly -d 'The monthly limit in USD' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l weekly -d 'The weekly limit in USD (weeks start on Monday)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l window -d 'A rolling window, `EVERY=USD` (`5h=10`: the spend of any 5 hours stays under $10; 1 minute to 31 days). Repeat for several; given, they replace the windows set' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l clear -d 'Remove the limits and windows not given (with none given: all of them)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -l json -d 'Print JSON'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from limit" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a new client key and print it once on stdout: only its SHA-256 digest is kept, so copy it now (a lost key is revoked and replaced, never shown again)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List keys: name, user and team (team ledger), limits, when made, when revoked. Never the keys or their digests'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a key by name: on a team ledger every daemon refuses it within seconds; on a SQLite ledger the daemon refuses it after its next reload or restart'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "limit" -d 'Team ledger only: set a user\'s or a team\'s own daily, weekly and monthly limits and rolling windows in USD, which hold every key of that user or team together (besides each key\'s own). Every daemon on the ledger enforces a change within seconds. Without a limit flag, shows the limits set'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and not __fish_seen_subcommand_from check help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and not __fish_seen_subcommand_from check help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and not __fish_seen_subcommand_from check help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Ask each provider for its models: does it answer, does it take its key, how fast?'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from check" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from check" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from check" -l json -d 'Print a JSON array, one object per provider'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from help" -f -a "check" -d 'Ask each provider for its models: does it answer, does it take its key, how fast?'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand providers; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -f -a "show" -d 'Show the price table, or one model\'s full price as the proxy resolves it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -f -a "update" -d 'Install a newer LiteLLM price file (model_prices_and_context_window.json) as an overlay in the data dir; its prices replace the built-in ones (config `pricing:` still wins)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -f -a "reset" -d 'Remove the installed overlay: back to the built-in table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and not __fish_seen_subcommand_from show update reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -l provider -d 'Only models of this provider (table); the provider serving MODEL (one model)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -l search -d 'Only models whose name contains TEXT (table)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -l json -d 'Print JSON (prices in USD per million tokens)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from update" -l file -d 'A LiteLLM price file (model_prices_and_context_window.json)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from update" -l url -d 'Download the price file from URL' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from update" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from update" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from reset" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from reset" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the price table, or one model\'s full price as the proxy resolves it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from help" -f -a "update" -d 'Install a newer LiteLLM price file (model_prices_and_context_window.json) as an overlay in the data dir; its prices replace the built-in ones (config `pricing:` still wins)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Remove the installed overlay: back to the built-in table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand prices; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and not __fish_seen_subcommand_from migrate help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and not __fish_seen_subcommand_from migrate help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and not __fish_seen_subcommand_from migrate help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and not __fish_seen_subcommand_from migrate help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and not __fish_seen_subcommand_from migrate help" -f -a "migrate" -d 'Copy a SQLite ledger into a PostgreSQL ledger (team mode)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and not __fish_seen_subcommand_from migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -l to -d 'The PostgreSQL ledger to copy into: postgres://USER@HOST:PORT/DATABASE (created tables and migrations included)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -l from -d 'The SQLite ledger to copy [default: the configured SQLite ledger, else the default path]' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -l batch -d 'Requests per transaction' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -l json -d 'Print a JSON summary on stdout instead of the final line on stderr'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Copy a SQLite ledger into a PostgreSQL ledger (team mode)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand doctor" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand doctor" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand doctor" -l json -d 'Print `{"ok": bool, "checks": [{"name", "status", "detail", "fix"}]}`'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -f -a "install" -d 'Write a shim for TOOL; put the shim folder first on PATH to use it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -f -a "list" -d 'List the installed shims'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -f -a "remove" -d 'Remove the shim for TOOL (only a file smartproxy wrote)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and not __fish_seen_subcommand_from install list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from install" -l preset -d 'The preset to run it with (default: the tool\'s name, when a preset has it)' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from install" -l dir -d 'The shim folder (default: the data dir\'s `shims/`)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from install" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from install" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from list" -l dir -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from list" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from list" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from list" -l json
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from remove" -l dir -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from remove" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from remove" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write a shim for TOOL; put the shim folder first on PATH to use it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the installed shims'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove the shim for TOOL (only a file smartproxy wrote)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand shim; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand env" -l shell -d 'The syntax to print: `sh` (bash, zsh, sh) or `fish`' -r -f -a "sh\t''
fish\t''"
complete -c smartproxy -n "__fish_smartproxy_using_subcommand env" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand env" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand env" -l json -d 'Print the variables as one JSON object instead'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand env" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand env" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -l port -d 'Port on 127.0.0.1 to serve on; 0 picks a free one' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -f -a "token" -d 'Print a dashboard token (a JWT signed with JWT_SECRET) on stdout'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and not __fish_seen_subcommand_from token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from token" -l ttl -d 'How long the token is valid: 90s, 30m, 12h, 7d' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from token" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from token" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from token" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from help" -f -a "token" -d 'Print a dashboard token (a JWT signed with JWT_SECRET) on stdout'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand ui; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand completions" -l config -d 'Config file to use instead of discovering one (./smartproxy.yaml, ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml)' -r -F
complete -c smartproxy -n "__fish_smartproxy_using_subcommand completions" -l log-level -d 'Log filter for smartproxy\'s own logs on stderr, e.g. `info` or `smartproxy=debug` [env: SMARTPROXY_LOG_LEVEL; default: warn]' -r
complete -c smartproxy -n "__fish_smartproxy_using_subcommand completions" -s h -l help -d 'Print help'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand completions" -s V -l version -d 'Print version'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "run" -d 'Run a command behind a private, budgeted, recorded proxy'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "daemon" -d 'The persistent proxy for editors and IDEs (`start` is an alias)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "dash" -d 'Live terminal dashboard: sessions, requests as they come, totals, breakers'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "stats" -d 'Show what requests cost, grouped by model, provider, session or tag'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "cost" -d 'What the sessions on a commit, a range of commits or a branch cost (from the git state every `run` records)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "hooks" -d 'Git hooks: `hooks install` adds an `AI-Cost:` trailer to every commit message'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "resume" -d 'Let a session the loop breaker stopped continue (`run`\'s or the daemon\'s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "sessions" -d 'List recent sessions, sub-sessions under their parents'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "quote" -d 'What a command\'s earlier runs cost and took (p50, p90), before running it again'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "report" -d 'Spend per day, per month, or per 5-hour block (subscription windows), as ccusage shows'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "status" -d 'One line of live cost (this `run` session, or today) for shell prompts and statuslines'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "export" -d 'Write the ledger\'s requests as CSV or JSON Lines (streamed, any size)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "prune" -d 'Delete ledger rows older than an age (a dry run unless --execute)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "config" -d 'Check and inspect configuration'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "budget" -d 'Budget limits, what is spent against them and what is left'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "cache" -d 'Inspect or clear the response cache'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "capture" -d 'Read the opt-in capture of request and response bodies (capture.enabled, off by default): show one request\'s bodies, stats, clear'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "route" -d 'Explain routing decisions without sending anything'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "request" -d 'Send one request from a file through the configured routing; print the reply on stdout and the routing headers on stderr'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "keys" -d 'Client keys for the daemon: create, list, revoke'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "providers" -d 'Check that the configured providers answer and accept their keys'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "prices" -d 'Model prices: show them, or install a newer LiteLLM price file as an overlay'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "ledger" -d 'Move the ledger: `ledger migrate --to postgres://...` copies a SQLite ledger into PostgreSQL'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "doctor" -d 'Check the config, the ledger, the daemon and the listeners; print a fix for each problem'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "shim" -d 'Shims: scripts that run a tool under `smartproxy run --preset TOOL` whenever you call it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "env" -d 'Print the variables that point tools started outside `run` at the daemon, for `eval`'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "ui" -d 'The web dashboard over the ledger on a loopback port; `ui token` prints a login token'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and not __fish_seen_subcommand_from run daemon dash stats cost hooks resume sessions quote report status export prune config budget cache capture route request keys providers prices ledger doctor shim env ui completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "status" -d 'Is the daemon running? Where does it listen?'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "stop" -d 'Stop the daemon gracefully (SIGTERM; requests in flight finish)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "install" -d 'Run the daemon at login: write a systemd user unit (Linux) or a launchd agent (macOS) that restarts it on failure. Keys are never written into it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "install" -d 'Write `.git/hooks/prepare-commit-msg` (where git looks for hooks: `core.hooksPath` and linked worktrees respected) that adds `AI-Cost: $X.XX (N requests, M sessions)` to each commit message'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "uninstall" -d 'Remove the hook `hooks install` wrote (a hook smartproxy did not write is left alone)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "daily" -d 'Spend per local day, oldest first'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "monthly" -d 'Spend per local month, oldest first'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "blocks" -d 'Spend per 5-hour block, oldest first; the open one with its burn rate and projection'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "validate" -d 'Check a config file: every error is shown with its file, line and key. Exits 1 when the config is invalid'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Show the configuration in effect (file, listener, ledger, providers, `pricing:` overrides in USD per million tokens; never keys)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "stats" -d 'Entries, size, hits and what the hits saved'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "clear" -d 'Delete entries: all of them, or one model\'s'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from capture" -f -a "show" -d 'Print a request\'s captured bodies: both, each under a heading, or one of them as it was (for piping to `jq`). Sealed bodies need SMARTPROXY_CAPTURE_KEY'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from capture" -f -a "stats" -d 'Where the captures are, how many and how large'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from capture" -f -a "clear" -d 'Delete every captured body'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "explain" -d 'Show which targets a request would go to, in order, and why others are skipped. Sends nothing'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "create" -d 'Make a new client key and print it once on stdout: only its SHA-256 digest is kept, so copy it now (a lost key is revoked and replaced, never shown again)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'List keys: name, user and team (team ledger), limits, when made, when revoked. Never the keys or their digests'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "revoke" -d 'Revoke a key by name: on a team ledger every daemon refuses it within seconds; on a SQLite ledger the daemon refuses it after its next reload or restart'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "limit" -d 'Team ledger only: set a user\'s or a team\'s own daily, weekly and monthly limits and rolling windows in USD, which hold every key of that user or team together (besides each key\'s own). Every daemon on the ledger enforces a change within seconds. Without a limit flag, shows the limits set'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from providers" -f -a "check" -d 'Ask each provider for its models: does it answer, does it take its key, how fast?'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from prices" -f -a "show" -d 'Show the price table, or one model\'s full price as the proxy resolves it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from prices" -f -a "update" -d 'Install a newer LiteLLM price file (model_prices_and_context_window.json) as an overlay in the data dir; its prices replace the built-in ones (config `pricing:` still wins)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from prices" -f -a "reset" -d 'Remove the installed overlay: back to the built-in table'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from ledger" -f -a "migrate" -d 'Copy a SQLite ledger into a PostgreSQL ledger (team mode)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from shim" -f -a "install" -d 'Write a shim for TOOL; put the shim folder first on PATH to use it'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from shim" -f -a "list" -d 'List the installed shims'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from shim" -f -a "remove" -d 'Remove the shim for TOOL (only a file smartproxy wrote)'
complete -c smartproxy -n "__fish_smartproxy_using_subcommand help; and __fish_seen_subcommand_from ui" -f -a "token" -d 'Print a dashboard token (a JWT signed with JWT_SECRET) on stdout'
