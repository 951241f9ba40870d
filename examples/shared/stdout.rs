//! `say!`: `println!` for the examples' reports, which ends the program quietly when stdout
//! is closed (`check … | head`) instead of panicking like `println!`.

/// Writes one line to stdout; a closed pipe ends the program with success (the reader has
/// what it wanted), any other write error with a message and failure.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(std::io::stdout(), $($arg)*) {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("cannot write the report: {err}");
            std::process::exit(1);
        }
    }};
}
