//! Starts the fixture servers and prints their addresses as shell exports.

fn main() -> std::io::Result<()> {
    let fixtures = lune_test_fixtures::start()?;
    // PEM text spans lines but has no single quotes, so this stays sourceable.
    for (name, value) in fixtures.env() {
        println!("export {name}='{value}'");
    }
    loop {
        std::thread::park();
    }
}
