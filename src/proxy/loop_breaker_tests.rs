use super::*;

fn turn(hash: u64) -> Turn {
    Turn {
        hash,
        tool: Some(format!("tool{hash}")),
    }
}

const ON: LoopBreakerConfig = LoopBreakerConfig {
    repeat: Some(6),
    tokens_per_minute: None,
    user_messages: false,
};

fn session() -> Arc<str> {
    Arc::from("sess_0123456789")
}

/// Feeds `hashes` as one session's requests; the verdicts in order.
fn feed(breaker: &LoopBreaker, config: LoopBreakerConfig, hashes: &[u64]) -> Vec<Verdict> {
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| breaker.check(config, &session(), Some(turn(*h)), i as i64))
        .collect()
}

fn stopped_at(verdicts: &[Verdict]) -> Option<usize> {
    verdicts.iter().position(|v| matches!(v, Verdict::Stop(_)))
}

#[test]
fn the_same_turn_warns_at_five_and_stops_at_six() {
    let breaker = LoopBreaker::new(None);
    let v = feed(&breaker, ON, &[7; 10]);
    assert!(matches!(v[3], Verdict::Pass));
    assert!(
        matches!(&v[4], Verdict::Warn { first: true, warning } if warning.contains("5 of the last 5"))
    );
    assert_eq!(stopped_at(&v), Some(5));
    let Verdict::Stop(stop) = &v[5] else {
        panic!("{v:?}")
    };
    assert!(stop.fresh);
    assert!(
        stop.message.contains("tool call `tool7`"),
        "{}",
        stop.message
    );
    assert!(
        stop.message.contains("smartproxy resume sess_012"),
        "{}",
        stop.message
    );
    assert!(
        !stop.row.contains("tool7"),
        "no names on the row: {}",
        stop.row
    );
    // Stopped for good: a different request is refused too, not fresh.
    assert!(matches!(&v[6], Verdict::Stop(s) if !s.fresh));
}

#[test]
fn a_repeat_with_other_requests_between_is_caught_in_the_window() {
    let breaker = LoopBreaker::new(None);
    let v = feed(&breaker, ON, &[1, 1, 2, 1, 1, 3, 1, 1]);
    assert_eq!(stopped_at(&v), Some(7), "six 1s in the last eight");
}

#[test]
fn alternating_a_b_is_caught() {
    let breaker = LoopBreaker::new(None);
    let v = feed(&breaker, ON, &[1, 2, 1, 2, 1, 2, 1]);
    assert!(matches!(&v[4], Verdict::Warn { .. }), "{v:?}");
    assert_eq!(stopped_at(&v), Some(5));
    let Verdict::Stop(stop) = &v[5] else { panic!() };
    assert!(
        stop.message.contains("alternating over the last 6"),
        "{}",
        stop.message
    );
}

#[test]
fn varied_requests_never_stop() {
    let breaker = LoopBreaker::new(None);
    // Polling with a changing result, mixed with other steps: each signature differs.
    let hashes: Vec<u64> = (0..200)
        .map(|i| if i % 3 == 0 { 1000 + i } else { i })
        .collect();
    let v = feed(&breaker, ON, &hashes);
    assert!(v.iter().all(|v| matches!(v, Verdict::Pass)), "{v:?}");
    // A period of three is not a loop the rule names (each is a third of any window).
    let v = feed(
        &LoopBreaker::new(None),
        ON,
        &[1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3],
    );
    assert!(v.iter().all(|v| matches!(v, Verdict::Pass)), "{v:?}");
}

#[test]
fn off_passes_everything() {
    let off = LoopBreakerConfig {
        repeat: None,
        tokens_per_minute: None,
        user_messages: false,
    };
    let v = feed(&LoopBreaker::new(None), off, &[1; 20]);
    assert!(v.iter().all(|v| matches!(v, Verdict::Pass)));
}

#[test]
fn the_token_ceiling_warns_then_stops() {
    let config = LoopBreakerConfig {
        repeat: None,
        tokens_per_minute: Some(1000),
        user_messages: false,
    };
    let breaker = LoopBreaker::new(None);
    let s = session();
    assert_eq!(breaker.check(config, &s, None, 0), Verdict::Pass);
    breaker.note_tokens(&s, 850, 1);
    assert!(matches!(
        breaker.check(config, &s, None, 2),
        Verdict::Warn { .. }
    ));
    breaker.note_tokens(&s, 200, 3);
    assert!(matches!(
        breaker.check(config, &s, None, 4),
        Verdict::Stop(_)
    ));
    // Another session is not stopped.
    let other: Arc<str> = Arc::from("other");
    assert_eq!(breaker.check(config, &other, None, 5), Verdict::Pass);
}

#[test]
fn a_resume_removes_the_marker_and_starts_afresh() {
    let dir = std::env::temp_dir().join(format!("loop-breaker-test-{}", std::process::id()));
    let breaker = LoopBreaker::new(Some(dir.clone()));
    let v = feed(&breaker, ON, &[1; 6]);
    assert_eq!(stopped_at(&v), Some(5));
    let marker = marker_path(&dir, &session());
    let text = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(text.contains("loop refused"), "{text}");
    assert!(matches!(feed(&breaker, ON, &[2])[0], Verdict::Stop(_)));
    let _ = std::fs::remove_file(&marker);
    let v = feed(&breaker, ON, &[1, 1, 1, 1, 1, 1]);
    assert_eq!(
        stopped_at(&v),
        Some(5),
        "afresh: five more before it stops again"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
