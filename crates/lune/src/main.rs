//! The `lune` command: `lune run <script> [args...]`, `lune setup`, `lune --version`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

mod runtime;

const USAGE: &str = "\
Usage: lune <command>

Commands:
  run <script> [args...]   Run a Luau script (the .luau/.lua extension is optional)
  setup                    Write type definitions for every library to ./types/ and
                           print how to use them with luau-lsp
  --version                Print the version
";

fn main() -> ExitCode {
    lune_utils::exit_on_panic();
    let mut args = std::env::args().skip(1);
    let code = match args.next().as_deref() {
        Some("run") => match args.next() {
            Some(script) => run(&script, args.collect()),
            None => usage_error("lune run needs a script path"),
        },
        Some("setup") => setup(),
        Some("--version" | "-V" | "version") => {
            println!("lune {}", runtime::version());
            ExitCode::SUCCESS
        }
        Some("--help" | "-h" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("Unknown command '{other}'")),
        None => usage_error("No command given"),
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("{message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn run(script: &str, args: Vec<String>) -> ExitCode {
    let Some(path) = find_script(script) else {
        eprintln!("No script found at '{script}' (also tried '{script}.luau' and '{script}.lua')");
        return ExitCode::FAILURE;
    };
    let source = match std::fs::read(&path) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("Failed to read '{}': {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(runtime::run(&path, source, args))
}

fn find_script(script: &str) -> Option<PathBuf> {
    let given = Path::new(script);
    [
        given.to_path_buf(),
        PathBuf::from(format!("{script}.luau")),
        PathBuf::from(format!("{script}.lua")),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn setup() -> ExitCode {
    let dir = Path::new("types");
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        for lib in lune_std::LIBRARIES {
            std::fs::write(dir.join(format!("{}.luau", lib.name)), (lib.typedefs)())?;
        }
        Ok(())
    });
    match written {
        Ok(()) => {
            println!(
                "Wrote type definitions for {} libraries to ./types/\n\n\
                 To use them with luau-lsp, add an alias to your .luaurc:\n\n\
                 {{\n    \"aliases\": {{ \"lune\": \"./types/\" }}\n}}\n\n\
                 and require libraries as require(\"@lune/net\").",
                lune_std::LIBRARIES.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Failed to write type definitions to ./types/: {e}");
            ExitCode::FAILURE
        }
    }
}
