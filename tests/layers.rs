//! The layers of `src/` hold: no file reaches a module of a layer above its
//! own (the order of the crate docs' "Layers"), so nothing low knows about
//! what is built on it. Reads the sources as text: every `crate::NAME`
//! outside comments, in code and in its unit tests, names a module (or an
//! item the crate root re-exports from one), whose layer must be at most the
//! file's own. Files of one folder are one layer; `lib.rs`, which wires the
//! layers together, is not checked.

use std::path::{Path, PathBuf};

/// Bottom up. A name on a line is a module of `src/` (or a file of it).
const LAYERS: &[&[&str]] = &[
    &["sync", "events", "priority", "platform"],
    &["segment"],
    &["wait"],
    &["slot"],
    &["ring"],
    &["doorbell"],
    &["endpoint"],
    &["typed"],
    &["inspect", "liveness"],
    &["compat"],
    // The hidden kit of the crate's own tests: over every layer, used by none.
    &["testkit"],
];

/// Items of the crate root, by the module they come from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Priority", "priority"),
    ("MAX_NAME_LEN", "segment"),
    ("Corruption", "ring"),
    ("RingCounters", "ring"),
    ("ShmError", "compat"),
    ("ShmResult", "compat"),
    ("buffer", "compat"),
    ("pring", "compat"),
    ("recovery", "compat"),
    ("safety", "compat"),
    ("transport", "compat"),
];

fn layer_of(module: &str) -> Option<usize> {
    if let Some(&(_, home)) = ROOT_ITEMS.iter().find(|(item, _)| *item == module) {
        return layer_of(home);
    }
    // The endpoints' types, re-exported at the root.
    if module.starts_with(char::is_uppercase) {
        return layer_of("endpoint");
    }
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a source, comments blanked (line breaks kept).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `NAME`s of every `crate::NAME` and `crate::{NAME, ..}` in `code`,
/// with the line each is on.
fn reached_in(code: &str) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `memlink_shm_crate::`, say
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(list) => {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                for item in list.split(',') {
                    let name = ident(item.trim_start());
                    if !name.is_empty() {
                        found.push((line, name));
                    }
                }
            }
            None => found.push((line, ident(rest))),
        }
    }
    found
}

/// [`reached_in`] of one line, names only.
fn reached(line: &str) -> Vec<String> {
    reached_in(&code_of(line)).into_iter().map(|(_, name)| name).collect()
}

#[test]
fn no_file_of_src_reaches_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 40, "src/ not found: {}", src.display());
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue;
        }
        let own = layer_of(top).unwrap_or_else(|| panic!("{} is in no layer: add it to LAYERS", rel.display()));
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (line, name) in reached_in(&code) {
            let Some(theirs) = layer_of(&name) else {
                upward.push(format!("{}:{line}: crate::{name} is in no layer", rel.display()));
                continue;
            };
            if theirs > own {
                upward.push(format!(
                    "{}:{line}: crate::{name} ({}) is above {top} ({})",
                    rel.display(),
                    LAYERS[theirs][0],
                    LAYERS[own][0]
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(reached("use crate::endpoint::Error; // crate::compat"), ["endpoint"]);
    assert_eq!(reached("    crate::Daemon::create(x)"), ["Daemon"]);
    assert_eq!(reached("use crate::{Client, ring::RingError};"), ["Client", "ring"]);
    assert!(reached("/// see [`crate::Daemon`]").is_empty(), "docs are not imports");
    assert!(layer_of("Daemon").unwrap() > layer_of("segment").unwrap());
    assert!(layer_of("ShmError").unwrap() > layer_of("endpoint").unwrap());
}

/// The 0.1.3 heap rings are the one part of `compat/` that wraps the engine
/// (the rest is compiled on the public API alone by `compat-check/`): they
/// reach its rings and nothing else below the public API.
#[test]
fn the_heap_rings_reach_only_the_engines_rings() {
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/compat");
    // Modules a downstream crate sees, and the ring module.
    let allowed = ["ring", "priority", "compat", "buffer", "pring", "liveness", "inspect"];
    let mut reached_below = Vec::new();
    for file in ["buffer.rs", "pring.rs", "heap_ends.rs"] {
        let code = code_of(&std::fs::read_to_string(compat.join(file)).expect("read a heap ring file"));
        for (line, name) in reached_in(&code) {
            let public_root_item = name.starts_with(char::is_uppercase);
            if !public_root_item && !allowed.contains(&name.as_str()) {
                reached_below.push(format!("compat/{file}:{line}: crate::{name}"));
            }
        }
    }
    assert!(
        reached_below.is_empty(),
        "the heap rings reach more of the engine than its rings:\n{}",
        reached_below.join("\n")
    );
}
