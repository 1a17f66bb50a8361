//! The pages Lighthouse and the engines are compared on: real pages (the Rust documentation
//! that ships with the toolchain: rustdoc and mdBook, light and very large) and synthetic
//! pages that each turn one or two of the dials Lighthouse's score is most sensitive to:
//! render-blocking CSS and scripts, main-thread work (long tasks), image weight, a slow
//! server, a late largest paint, layout shifts and web fonts. Everything is generated from
//! fixed seeds, so every run and every machine measures the same bytes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One page of the corpus: its stable name (the key results are joined on), the path and
/// query the server is asked for, and what it varies, for the report.
#[derive(Clone, Debug)]
pub struct Page {
    pub name: String,
    pub path: String,
    pub what: String,
}

/// Rustdoc's light index pages and its heaviest item pages (a megabyte of HTML, thousands of
/// elements), and two mdBook pages, whose stylesheets, scripts and fonts differ from rustdoc's.
const DOCS: [&str; 10] = [
    "std/index.html",
    "std/fs/index.html",
    "std/sync/index.html",
    "std/collections/struct.HashMap.html",
    "std/option/enum.Option.html",
    "std/primitive.str.html",
    "std/iter/trait.Iterator.html",
    "std/vec/struct.Vec.html",
    "book/index.html",
    "book/ch04-01-what-is-ownership.html",
];

/// Builds the corpus under `root`: `root/rust` links to the documentation, `root/synthetic`
/// holds the generated pages and their assets.
pub fn build(root: &Path, docs: &Path) -> Result<Vec<Page>, String> {
    let mut pages = Vec::new();
    for doc in DOCS {
        if !docs.join(doc).is_file() {
            return Err(format!("{} is missing from the Rust documentation", docs.join(doc).display()));
        }
        pages.push(Page {
            name: format!("rust/{doc}"),
            path: format!("/rust/{doc}"),
            what: if doc.starts_with("book/") { "mdBook page".into() } else { "rustdoc page".into() },
        });
    }
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    link(docs, &root.join("rust"))?;
    let synthetic = root.join("synthetic");
    let assets = synthetic.join("assets");
    std::fs::create_dir_all(&assets).map_err(|e| format!("{}: {e}", assets.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), String> {
        let path = synthetic.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("assets/style-60k.css", css(60_000, 1).as_bytes())?;
    for i in 1..=4 {
        write(&format!("assets/style-300k-{i}.css"), css(300_000, 10 + i).as_bytes())?;
    }
    for i in 1..=4 {
        write(&format!("assets/app-400k-{i}.js"), script(400_000, i).as_bytes())?;
    }
    write("assets/app-300k.js", script(300_000, 9).as_bytes())?;
    write("assets/tasks.js", tasks_js().as_bytes())?;
    for (name, width, height) in IMAGES {
        write(&format!("assets/{name}.png"), &png(*width, *height, name.len() as u64)?)?;
    }
    copy_fonts(docs, &assets)?;
    for spec in synthetic_pages() {
        write(&format!("{}.html", spec.name), spec.html.as_bytes())?;
        pages.push(Page {
            name: format!("synthetic/{}", spec.name),
            path: format!("/synthetic/{}.html{}", spec.name, spec.query),
            what: spec.what.into(),
        });
    }
    Ok(pages)
}

/// `count` pages spread evenly over the corpus, so a short run still has real and synthetic,
/// fast and slow pages.
pub fn pick(pages: Vec<Page>, count: usize) -> Vec<Page> {
    if count >= pages.len() {
        return pages;
    }
    let step = pages.len() as f64 / count.max(1) as f64;
    (0..count).map(|i| pages[(i as f64 * step) as usize].clone()).collect()
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(target, at).map_err(|e| format!("linking {}: {e}", at.display()))
}

#[cfg(not(unix))]
fn link(_: &Path, at: &Path) -> Result<(), String> {
    Err(format!("{}: the corpus links the documentation, which needs a Unix file system", at.display()))
}

/// Two of the web fonts rustdoc ships, copied under fixed names.
fn copy_fonts(docs: &Path, assets: &Path) -> Result<(), String> {
    let files = docs.join("static.files");
    let entries: Vec<PathBuf> = std::fs::read_dir(&files)
        .map_err(|e| format!("{}: {e}", files.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    for (prefix, name) in [("SourceSerif4-Regular", "serif.woff2"), ("FiraSans-Regular", "sans.woff2")] {
        let font = entries
            .iter()
            .find(|p| {
                let file = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                file.starts_with(prefix) && file.ends_with(".woff2")
            })
            .ok_or_else(|| format!("no {prefix}*.woff2 in {}", files.display()))?;
        std::fs::copy(font, assets.join(name)).map_err(|e| format!("{}: {e}", font.display()))?;
    }
    Ok(())
}

/// The generated images: name, width, height (RGB, stored uncompressed, so width × height × 3
/// bytes on the wire: the weight is the point).
const IMAGES: &[(&str, u32, u32)] = &[
    ("photo-60k", 200, 100),
    ("photo-200k", 320, 208),
    ("photo-400k", 400, 333),
    ("photo-1m", 640, 520),
    ("photo-4m", 1280, 1040),
];

struct Spec {
    name: &'static str,
    /// The query the page is requested with (`?delay=MS`: the server holds the document).
    query: &'static str,
    what: &'static str,
    html: String,
}

/// Main-thread work as a page does it: a fixed amount of computation, which a slower CPU
/// stretches. (A loop that runs until a clock time would take the same wall time at any CPU
/// speed, which no real page does: the mobile CPU slowdown would not touch it, while
/// Lighthouse's simulation multiplies the observed task by 4.)
const WORK_JS: &str =
    "function work(units) { let x = 1; for (let i = 0; i < units; i++) x = (x * 48271 + i) % 2147483647; return x; }";

/// Units of `work` a millisecond on the reference machine (2 cores, x86_64): 45 000 in node 20's
/// V8 once optimized, 33 000–45 000 in Chromium 156 from cold, so a page's "250 ms" task runs
/// about that long unthrottled there. Fixed rather than measured per run, so every run and
/// every machine gets the same bytes; a faster CPU just runs the same work faster.
const WORK_PER_MS: u32 = 40_000;

/// Long tasks as a browser meets them: `count` tasks of about `ms` each (unthrottled), one
/// after another, each its own task (a timer), so they show as separate long tasks.
fn busy(count: u32, ms: u32, after: &str) -> String {
    let units = ms * WORK_PER_MS;
    format!(
        "<script>\n{WORK_JS}\n\
         function chain(left) {{ if (left > 0) {{ window.worked = work({units}); setTimeout(() => chain(left - 1), 0); }} }}\n\
         {after}(() => chain({count}));\n</script>\n"
    )
}

/// The same long tasks from a deferred script of their own, started after load: where the
/// first paint waits on big downloads, Lighthouse's simulation places inline timers' tasks
/// before it (they depend on nothing it downloads) and counts no blocking time, while tasks
/// that run a downloaded script's functions wait for that script.
fn deferred_busy(count: u32, ms: u32) -> String {
    let units = ms * WORK_PER_MS;
    format!("<script defer src=\"assets/tasks.js\" data-count=\"{count}\" data-units=\"{units}\"></script>\n")
}

fn tasks_js() -> String {
    format!(
        "(function () {{\n  const {{ count, units }} = document.currentScript.dataset;\n  {WORK_JS}\n  \
         function chain(left) {{ if (left > 0) {{ window.worked = work(Number(units)); setTimeout(() => chain(left - 1), 0); }} }}\n  \
         addEventListener('load', () => setTimeout(() => chain(Number(count)), 300));\n}})();\n"
    )
}

/// The pages, from fast to hopeless. What Lighthouse's model can see decides how a dial is
/// turned: its simulation (Lantern) re-times the requests and tasks of an unthrottled load, so
/// a delay must sit in what it simulates. A server's delay counts as the median over the
/// origin's responses (so the slow-server pages hold every response, not just the document);
/// a timer's wait does not count at all (so the late image waits on a script's download, not
/// on a timer); layout shifts and main-thread work count as observed (CPU × 4 on mobile).
fn synthetic_pages() -> Vec<Spec> {
    let at_load = "((start) => addEventListener('DOMContentLoaded', start))";
    let after_load = "((start) => addEventListener('load', () => setTimeout(start, 1000)))";
    let hero = |name: &str, width: u32, height: u32, query: &str| {
        format!(
            "<img class=\"hero\" src=\"assets/{name}.png{query}\" width=\"{width}\" height=\"{height}\" alt=\"A generated photograph\">\n"
        )
    };
    let page = |head: &str, top: &str, bottom: &str| document(head, &format!("{top}{}{bottom}", article(6)));
    let stylesheet = |href: &str| format!("<link rel=\"stylesheet\" href=\"assets/{href}\">\n");
    let sync_script = |src: &str| format!("<script src=\"assets/{src}\"></script>\n");
    let big_css = (1..=4).map(|i| stylesheet(&format!("style-300k-{i}.css"))).collect::<String>();
    let big_script = sync_script("app-400k-1.js") + &sync_script("app-400k-2.js");
    // A single-page app's bundle: deferred, so the text paints first and the work comes after.
    let bundle =
        (1..=4).map(|i| format!("<script defer src=\"assets/app-400k-{i}.js\"></script>\n")).collect::<String>();
    // Its place is kept from the start (no shift): only the paint is late, after a 300 KB
    // script downloads and runs.
    let late_image = "<div id=\"slot\" style=\"aspect-ratio: 400 / 333\"></div>\n\
                      <script async src=\"assets/app-300k.js\" onload=\"setTimeout(() => {\n  \
                      const img = new Image(400, 333);\n  img.src = 'assets/photo-400k.png';\n  img.className = 'hero';\n  \
                      img.alt = 'A late photograph';\n  document.getElementById('slot').append(img);\n}, 200)\"></script>\n";
    let banner = "<script>\naddEventListener('load', () => setTimeout(() => {\n  const banner = document.createElement('div');\n  \
                  banner.className = 'banner';\n  banner.textContent = 'Sign up to our newsletter for weekly news and offers.';\n  \
                  document.querySelector('main').prepend(banner);\n}, 500));\n</script>\n";
    let no_dimensions = "<img src=\"assets/photo-200k.png?delay=700\" alt=\"First\">\n<img src=\"assets/photo-60k.png?delay=900\" alt=\"Second\">\n";
    let fonts = "<style>\n@font-face { font-family: Serif; src: url(assets/serif.woff2?delay=900) format('woff2'); font-display: block; }\n\
                 @font-face { font-family: Sans; src: url(assets/sans.woff2?delay=1400) format('woff2'); font-display: block; }\n\
                 body { font-family: Serif, serif; font-size: 18px; } h1, h2 { font-family: Sans, sans-serif; }\n</style>\n";
    let slow_server = |ms: u32| {
        page(
            &format!("<link rel=\"stylesheet\" href=\"assets/style-60k.css?delay={ms}\">\n"),
            &hero("photo-60k", 200, 100, &format!("?delay={ms}")),
            "",
        )
    };
    vec![
        Spec { name: "fast", query: "", what: "text only, nothing external", html: page("", "", "") },
        Spec {
            name: "css-60k",
            query: "",
            what: "one render-blocking stylesheet, 60 KB",
            html: page(&stylesheet("style-60k.css"), "", ""),
        },
        Spec {
            name: "css-1200k",
            query: "",
            what: "four render-blocking stylesheets, 1.2 MB",
            html: page(&big_css, "", ""),
        },
        Spec {
            name: "script-800k",
            query: "",
            what: "two synchronous scripts in the head, 800 KB",
            html: page(&big_script, "", ""),
        },
        Spec {
            name: "tasks-3x70",
            query: "",
            what: "three 70 ms tasks at DOMContentLoaded",
            html: page("", "", &busy(3, 70, at_load)),
        },
        Spec {
            name: "tasks-6x250",
            query: "",
            what: "six 250 ms tasks at DOMContentLoaded",
            html: page("", "", &busy(6, 250, at_load)),
        },
        Spec {
            name: "tasks-after-load",
            query: "",
            what: "four 200 ms tasks a second after load",
            html: page("", "", &busy(4, 200, after_load)),
        },
        Spec {
            name: "image-1m",
            query: "",
            what: "a 1 MB hero image (the largest paint)",
            html: page("", &hero("photo-1m", 640, 520, ""), ""),
        },
        Spec {
            name: "image-4m",
            query: "",
            what: "a 4 MB hero image (the largest paint)",
            html: page("", &hero("photo-4m", 1280, 1040, ""), ""),
        },
        Spec {
            name: "slow-server-300",
            query: "?delay=300",
            what: "the server holds each response (document, 60 KB CSS, hero) 300 ms",
            html: slow_server(300),
        },
        Spec {
            name: "slow-server-800",
            query: "?delay=800",
            what: "the server holds each response 800 ms",
            html: slow_server(800),
        },
        Spec {
            name: "slow-server-1500",
            query: "?delay=1500",
            what: "the server holds each response 1.5 s",
            html: slow_server(1500),
        },
        Spec {
            name: "late-lcp",
            query: "",
            what: "a 400 KB image an async 300 KB script inserts (the largest paint, late)",
            html: page("", late_image, ""),
        },
        Spec {
            name: "shift-banner",
            query: "",
            what: "a banner as tall as the viewport inserted above the text 0.5 s after load",
            html: page("", "", banner),
        },
        Spec {
            name: "shift-images",
            query: "",
            what: "images without dimensions above the text, arriving late",
            html: page("", no_dimensions, ""),
        },
        Spec {
            name: "web-fonts",
            query: "",
            what: "two web fonts (text invisible until they arrive), held 0.9 and 1.4 s",
            html: page(fonts, "", ""),
        },
        Spec {
            name: "tasks-and-shift",
            query: "",
            what: "six 250 ms tasks at DOMContentLoaded and the late banner",
            html: page("", "", &(busy(6, 250, at_load) + banner)),
        },
        Spec {
            name: "tasks-and-image",
            query: "",
            what: "four 250 ms tasks at DOMContentLoaded and a 4 MB hero image",
            html: page("", &hero("photo-4m", 1280, 1040, ""), &busy(4, 250, at_load)),
        },
        Spec {
            name: "heavy-app",
            query: "",
            what: "1.2 MB of render-blocking CSS, a 1.6 MB deferred bundle, six 250 ms tasks after load, the late banner",
            html: page(&(big_css.clone() + &bundle + &deferred_busy(6, 250)), "", banner),
        },
        Spec {
            name: "everything",
            query: "?delay=300",
            what: "slow document, 1.2 MB CSS, 800 KB scripts, a 4 MB image without dimensions held 1.5 s, six 250 ms tasks after load",
            html: page(
                &(big_css + &big_script + &deferred_busy(6, 250)),
                "<img class=\"hero\" src=\"assets/photo-4m.png?delay=1500\" alt=\"A heavy photograph\">\n",
                "",
            ),
        },
    ]
}

/// A whole document around `body`, with a little inline style so it looks like a page.
fn document(head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>speedbatch corpus page</title>\n\
         <style>\nbody {{ margin: 0; font: 16px/1.5 sans-serif; color: #222; }}\nmain {{ max-width: 64rem; margin: 0 auto; padding: 1rem; }}\n\
         .hero {{ display: block; width: 100%; height: auto; }}\nimg {{ max-width: 100%; }}\n\
         .banner {{ height: 100vh; box-sizing: border-box; background: #fde68a; padding: 1rem; font-size: 1.4rem; }}\n</style>\n{head}</head>\n\
         <body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )
}

/// `sections` headed sections of plain prose: enough text that the text itself can be the
/// largest paint, and enough to scroll.
fn article(sections: usize) -> String {
    let mut rng = Rng(0x5eed);
    let mut html = String::from("<h1>Measuring the speed of many pages at once</h1>\n");
    for s in 0..sections {
        let _ = writeln!(html, "<h2>Section {}: {}</h2>", s + 1, rng.words(4));
        for _ in 0..3 {
            let _ = writeln!(html, "<p>{}.</p>", rng.words(60));
        }
    }
    html
}

/// `bytes` of rules, none of which match: the weight and parse cost of a framework's
/// stylesheet of which a page uses a little.
fn css(bytes: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut css = String::with_capacity(bytes + 200);
    let mut i = 0;
    while css.len() < bytes {
        let _ = writeln!(
            css,
            ".c{seed}-{i} > .x{} {{ color: #{:06x}; margin: {}px {}px; padding: {}px; border: 1px solid #{:06x}; }}",
            rng.next() % 1000,
            rng.next() & 0xff_ffff,
            rng.next() % 40,
            rng.next() % 40,
            rng.next() % 20,
            rng.next() & 0xff_ffff,
        );
        i += 1;
    }
    css
}

/// `bytes` of functions and data the browser must download, parse and run before it goes on
/// with the page: a synchronous bundle.
fn script(bytes: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut js = String::with_capacity(bytes + 200);
    let mut i = 0;
    while js.len() < bytes {
        let numbers: Vec<String> = (0..24).map(|_| (rng.next() % 100_000).to_string()).collect();
        let _ = writeln!(
            js,
            "var d{seed}_{i} = [{}];\nfunction f{seed}_{i}(a, b) {{ var s = 0; for (var k = 0; k < d{seed}_{i}.length; k++) {{ s += (d{seed}_{i}[k] ^ a) % (b + {}); }} return s; }}",
            numbers.join(","),
            i % 7 + 1,
        );
        i += 1;
    }
    // Run a little of it, as a bundle's start-up does.
    let _ = writeln!(
        js,
        "var sum{seed} = 0; for (var r = 0; r < {i}; r += 3) {{ sum{seed} += this['f{seed}_' + r](r, 5); }}"
    );
    js
}

/// A PNG of `width` × `height` RGB pixels: a gradient with noise, stored without compression
/// (deflate's stored blocks), so its size is its pixel count × 3.
fn png(width: u32, height: u32, seed: u64) -> Result<Vec<u8>, String> {
    let mut rng = Rng(seed + 1);
    let mut raw = Vec::with_capacity((width as usize * 3 + 1) * height as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let noise = (rng.next() % 48) as u32;
            raw.push(((x * 255 / width.max(1)) as u8).wrapping_add(noise as u8));
            raw.push(((y * 255 / height.max(1)) as u8).wrapping_add((noise / 2) as u8));
            raw.push((((x + y) * 127 / (width + height).max(1)) as u8).wrapping_add(96));
        }
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
    zlib.write_all(&raw).map_err(|e| e.to_string())?;
    let idat = zlib.finish().map_err(|e| e.to_string())?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8 bits per channel, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", idat.as_slice()), (b"IEND", &[][..])] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(out)
}

/// xorshift64: the same bytes from the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn words(&mut self, count: usize) -> String {
        const WORDS: [&str; 24] = [
            "page", "speed", "server", "browser", "render", "image", "script", "layout", "paint", "network", "request",
            "measure", "content", "largest", "first", "shift", "task", "thread", "style", "font", "cache", "budget",
            "users", "mobile",
        ];
        let mut out: Vec<&str> = (0..count).map(|_| WORDS[(self.next() % WORDS.len() as u64) as usize]).collect();
        if let Some(first) = out.first_mut() {
            *first = match *first {
                "page" => "Page",
                "speed" => "Speed",
                other => other,
            };
        }
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_png_has_its_signature_chunks_and_weight() {
        let bytes = png(40, 20, 7).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 40);
        assert!(bytes.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND's CRC ends every PNG");
        assert!(bytes.len() > 40 * 20 * 3, "stored, not compressed");
        assert_eq!(png(40, 20, 7).unwrap(), bytes, "the same bytes from the same seed");
    }

    #[test]
    fn generated_assets_have_the_size_asked_for() {
        let css = css(10_000, 1);
        assert!((10_000..10_300).contains(&css.len()));
        let js = script(10_000, 1);
        assert!((10_000..10_600).contains(&js.len()));
    }

    #[test]
    fn long_tasks_are_fixed_work_not_a_clock() {
        for script in [busy(2, 100, "start"), tasks_js()] {
            assert!(!script.contains("performance.now"), "a clock loop ignores CPU throttling: {script}");
            assert!(script.contains("work("), "{script}");
        }
        assert!(busy(2, 100, "start").contains(&format!("work({})", 100 * WORK_PER_MS)));
        assert!(deferred_busy(6, 250).contains(&format!("data-units=\"{}\"", 250 * WORK_PER_MS)));
    }

    #[test]
    fn picking_spreads_over_the_corpus() {
        let pages: Vec<Page> =
            (0..10).map(|i| Page { name: i.to_string(), path: String::new(), what: String::new() }).collect();
        let names: Vec<String> = pick(pages.clone(), 4).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["0", "2", "5", "7"]);
        assert_eq!(pick(pages, 20).len(), 10);
    }
}
