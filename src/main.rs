fn main() -> std::process::ExitCode {
    let argv = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::ExitCode::from(rustha::dispatch::main(argv))
}
