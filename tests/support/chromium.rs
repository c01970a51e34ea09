//! Headless Chromium for the dashboard's tests: the DOM after scripts ran, and screenshots
//! checked to be PNGs of the window's size with content (their paths printed for the CI log).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{skip_or_fail, text};

/// Chromium, or `None` (skipped outside CI) when it is not installed.
pub fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        skip_or_fail("chromium is not installed (apt-get install chromium)");
    }
    found
}

fn chromium_run(chromium: &Path, args: &[&str], url: &str, size: (u32, u32)) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = super::isolated_command(chromium);
    cmd.env("HOME", profile.path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Read while it runs: a DOM larger than the pipe's buffer would block it until killed.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = Vec::new();
        let _ = stdout.read_to_end(&mut dom);
        dom
    });
    let out = super::wait_output(child, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        text(&out.stderr)
    );
    reader.join().unwrap()
}

/// The DOM after scripts ran.
pub fn dump_dom(chromium: &Path, url: &str) -> String {
    dump_dom_at(chromium, url, (1280, 900))
}

/// `dump_dom` in a window of `size` (width, height): what the page's script computed from
/// its layout at that width.
pub fn dump_dom_at(chromium: &Path, url: &str, size: (u32, u32)) -> String {
    text(&chromium_run(chromium, &["--dump-dom"], url, size))
}

/// The DOM once `budget_ms` of virtual time passed (timers fire without real waiting; time
/// stands still while a fetch is pending), for pages that update themselves.
pub fn dump_dom_after(chromium: &Path, url: &str, budget_ms: u32) -> String {
    let budget = format!("--virtual-time-budget={budget_ms}");
    text(&chromium_run(
        chromium,
        &["--dump-dom", &budget],
        url,
        (1280, 900),
    ))
}

/// Takes a screenshot into target/tmp/web_ui/NAME.png, prints its path and size, and checks it
/// is a 1280x900 PNG with many colours (text, badges, chart), not a blank page.
pub fn screenshot(chromium: &Path, url: &str, name: &str) {
    screenshot_at(chromium, url, name, (1280, 900));
}

/// `screenshot` in a window of `size` (width, height).
pub fn screenshot_at(chromium: &Path, url: &str, name: &str, size: (u32, u32)) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_ui");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    chromium_run(
        chromium,
        &[&format!("--screenshot={}", file.display())],
        url,
        size,
    );
    let bytes = std::fs::read(&file).unwrap();
    let (width, height, colours) = png_facts(&bytes);
    // Straight to stderr, not `eprintln!`, which the test harness captures: the line is for
    // the CI log, passing or not.
    let _ = writeln!(
        std::io::stderr(),
        "screenshot {}: {} bytes, {width}x{height}, {colours} colours ({url})",
        file.display(),
        bytes.len()
    );
    assert_eq!((width, height), size, "{}", file.display());
    assert!(
        colours > 16,
        "{} looks blank: {colours} colours",
        file.display()
    );
}

/// Width, height and the number of distinct pixel values of an 8-bit RGB(A) PNG.
pub fn png_facts(png: &[u8]) -> (u32, u32, usize) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (mut at, mut idat) = (8, Vec::new());
    let (mut width, mut height, mut channels) = (0, 0, 0);
    while at + 8 <= png.len() {
        let len = be(&png[at..]) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = be(&data[0..]);
                height = be(&data[4..]);
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width as usize * channels;
    let mut prev = vec![0u8; stride];
    let mut colours = std::collections::HashSet::new();
    for row in raw.chunks(stride + 1).take(height as usize) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            cur[i] = line[i].wrapping_add(predictor);
        }
        for px in cur.chunks(channels) {
            colours.insert(px.to_vec());
        }
        prev = cur;
    }
    (width, height, colours.len())
}
