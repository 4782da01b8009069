//! Collects the entities' doc comments (`//!` per table, `///` per field) so the GraphQL
//! schema can describe every type and field with the same words, written once.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../entity/src");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut tables = String::new();
    let mut fields = String::new();
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
        let Ok(source) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Some(table) = source
            .split("table_name = \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let header: Vec<&str> = source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim())
            .collect();
        let _ = writeln!(tables, "    ({table:?}, {:?}),", header.join(" ").trim());
        let mut doc: Vec<&str> = Vec::new();
        for line in source.lines().map(str::trim) {
            if let Some(text) = line.strip_prefix("///") {
                doc.push(text.trim());
            } else if line.starts_with("#[") {
                continue;
            } else if let Some(rest) = line.strip_prefix("pub ") {
                if let Some((name, _)) = rest.split_once(':')
                    && !doc.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    let _ = writeln!(fields, "    ({table:?}, {name:?}, {:?}),", doc.join(" "));
                }
                doc.clear();
            } else {
                doc.clear();
            }
        }
    }
    let out = format!(
        "/// `(table, description)` from each entity file's `//!` header.\n\
         pub static TABLE_DOCS: &[(&str, &str)] = &[\n{tables}];\n\
         /// `(table, field, description)` from each entity field's `///` comment.\n\
         pub static FIELD_DOCS: &[(&str, &str, &str)] = &[\n{fields}];\n"
    );
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("entity_docs.rs");
    if let Err(err) = std::fs::write(&dest, out) {
        panic!("writing {}: {err}", dest.display());
    }
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}
