//! `make fake-crux`: the fake Chrome UX Report the local stack's analyzers call, for a session
//! of your own (the e2e tests and the bench start it themselves). Serves until stopped.

fn main() -> std::process::ExitCode {
    let stack = match testkit::stack::DeployedStack::try_load() {
        Ok(stack) => stack,
        Err(err) => {
            eprintln!("fake-crux: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match testkit::fake_crux::local::for_local_stack(&stack) {
        Ok(fake) => {
            println!("fake Chrome UX Report at {} (Ctrl-C stops it)", fake.api_url());
            loop {
                std::thread::park();
            }
        }
        Err(err) => {
            eprintln!("fake-crux: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
