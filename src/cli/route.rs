//! `smartproxy route explain`: the whole routing decision for a request file, sent nowhere.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use crate::printer;
use crate::routing::plan::{self, Facts, NoRoute};
use crate::wire::estimate::json_text_tokens;
use crate::wire::openai::ChatRequestView;

#[derive(Debug, clap::Subcommand)]
pub enum RouteCommand {
    /// Show which targets a request would go to, in order, and why others are skipped.
    /// Sends nothing.
    #[command(
        after_help = "Example:\n  smartproxy route explain --file testdata/openai_chat.json --tag nightly"
    )]
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A Chat Completions request body (JSON).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Pretend the request comes from a `run` session with this tag.
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
    /// Pretend the request comes from this client address.
    #[arg(long, value_name = "IP")]
    pub source: Option<std::net::IpAddr>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn route(cmd: &RouteCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let RouteCommand::Explain(args) = cmd;
    let config = super::load_config(config_path)?;
    let body = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let view = ChatRequestView::parse(&body)
        .map_err(|e| anyhow::anyhow!("{}: {}", args.file.display(), e.message))?;
    let facts = Facts {
        model: &view.model,
        stream: view.is_stream(),
        tools: view.has_tools(),
        images: view.has_images(),
        json: view.wants_json(),
        prompt_tokens: json_text_tokens(view.messages.get()),
        source: args.source,
        tag: args.tag.as_deref(),
    };
    // A fresh process has no circuit history: every breaker is closed here.
    let decision = plan::explain(&config, &facts, &|_, _| false);
    if args.json {
        printer::out(&explain_json(&config, &facts, &decision).to_string());
    } else {
        printer::out(&explain_text(&config, &facts, &decision));
    }
    Ok(if decision.is_ok() {
        0
    } else {
        super::EXIT_FAILURE
    })
}

fn explain_json(
    config: &crate::config::Config,
    facts: &Facts<'_>,
    decision: &Result<plan::Plan, NoRoute>,
) -> serde_json::Value {
    let request = json!({
        "model": facts.model, "stream": facts.stream, "tools": facts.tools, "images": facts.images,
        "json": facts.json, "estimated_prompt_tokens": facts.prompt_tokens,
    });
    match decision {
        Ok(plan) => json!({
            "request": request,
            "config": config.source_display(),
            "route": plan.route,
            "model": plan.model,
            "steps": plan.trail,
            "targets": plan.targets.iter().map(|t| {
                let p = &config.providers[t.provider];
                json!({"provider": p.name, "model": t.model, "kind": p.kind.as_str(), "base_url": crate::format::redact_url(&p.base_url)})
            }).collect::<Vec<_>>(),
            "skipped": plan.skipped.iter().map(|s| json!({"provider": s.provider, "model": s.model, "reason": s.reason.to_string()})).collect::<Vec<_>>(),
        }),
        Err(err) => {
            json!({"request": request, "config": config.source_display(), "error": err.to_string()})
        }
    }
}

fn explain_text(
    config: &crate::config::Config,
    facts: &Facts<'_>,
    decision: &Result<plan::Plan, NoRoute>,
) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = format!(
        "request: model `{}`, stream {}, tools {}, images {}, json {}, about {} prompt tokens\nconfig:  {}\n",
        facts.model,
        yes(facts.stream),
        yes(facts.tools),
        yes(facts.images),
        yes(facts.json),
        facts.prompt_tokens,
        config.source_display()
    );
    let plan = match decision {
        Ok(plan) => plan,
        Err(err) => {
            if let NoRoute::NoneServes { trail, skipped, .. } = err {
                out.push_str("steps:\n");
                for (i, step) in trail.iter().enumerate() {
                    out.push_str(&format!("  {}. {step}\n", i + 1));
                }
                out.push_str("skipped:\n");
                for skip in skipped {
                    out.push_str(&format!(
                        "  - {}/{}: {}\n",
                        skip.provider, skip.model, skip.reason
                    ));
                }
            }
            out.push_str(&format!("no route: {err}\n"));
            return out;
        }
    };
    out.push_str("steps:\n");
    for (i, step) in plan.trail.iter().enumerate() {
        out.push_str(&format!("  {}. {step}\n", i + 1));
    }
    out.push_str(&format!(
        "route: {}\ntargets, tried in this order:\n",
        plan.route
    ));
    for (i, target) in plan.targets.iter().enumerate() {
        let p = &config.providers[target.provider];
        out.push_str(&format!(
            "  {}. {}/{}  ({} at {})\n",
            i + 1,
            p.name,
            target.model,
            p.kind.as_str(),
            crate::format::redact_url(&p.base_url)
        ));
    }
    if !plan.skipped.is_empty() {
        out.push_str("skipped:\n");
        for skip in &plan.skipped {
            out.push_str(&format!(
                "  - {}/{}: {}\n",
                skip.provider, skip.model, skip.reason
            ));
        }
    }
    out
}
