//! The `partnerwatch` binary: parses the command line and hands over to [`partnerwatch::cli`].

fn main() -> std::process::ExitCode {
    partnerwatch::cli::main()
}
