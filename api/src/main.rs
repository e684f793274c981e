//! `api` serves the loyalty backend. Other commands:
//!   api print-schema            write api/schema/{member,admin}.graphql
//!   api create-admin NAME ROLE  create an admin; the password is read from standard input
//!   api verify-draw SERVER_SEED CLIENT_SEED MEMBER_ID MEMBER_NONCE POOL PRIZE_TABLE
//!                               recompute a revealed blind-box draw (see the README)

use std::io::BufRead;
use std::process::ExitCode;

use api::auth::{AdminRole, create_admin};
use api::config::Settings;
use api::startup::{Application, build_state};
use secrecy::SecretString;

// Under load glibc's malloc and free took about a sixth of the server's CPU (perf, see the
// README's Performance section); mimalloc takes a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("print-schema") => return print_schema(),
        Some("verify-draw") => return verify_draw(&args[1..]),
        _ => {}
    }
    dotenvy::dotenv().ok();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("refusing to start: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match api::telemetry::try_init(&settings.observability) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("refusing to start: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.first().map(String::as_str) {
        None | Some("serve") => serve(settings).await,
        Some("create-admin") => create_admin_command(settings, &args[1..]).await,
        Some(other) => Err(format!(
            "unknown command {other:?}; try serve, print-schema or create-admin"
        )),
    };
    // The exporter sends what is buffered; it blocks, so off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    app.run_until_signalled().await.map_err(|e| e.to_string())
}

fn print_schema() -> ExitCode {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let (member, admin) = api::graphql::sdl();
    let write = |name: &str, sdl: &str| std::fs::write(dir.join(name), sdl);
    match std::fs::create_dir_all(&dir)
        .and_then(|_| write("member.graphql", &member))
        .and_then(|_| write("admin.graphql", &admin))
    {
        Ok(()) => {
            println!("wrote {}/member.graphql and admin.graphql", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: writing the schema files: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn create_admin_command(settings: Settings, args: &[String]) -> Result<(), String> {
    let [username, role] = args else {
        return Err("usage: api create-admin USERNAME SUPERADMIN|OPERATOR|AUDITOR|INTEGRATION (password on stdin)".into());
    };
    let role = AdminRole::parse(role).ok_or_else(|| format!("unknown role {role:?}"))?;
    eprintln!("password for {username}:");
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| e.to_string())?;
    let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_string());
    let state = build_state(settings).await.map_err(|e| e.to_string())?;
    let admin = create_admin(&state.db, username, &password, role, state.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    println!("created admin {} ({})", admin.username, admin.role.as_str());
    Ok(())
}

/// Recomputes a revealed blind-box draw from the data the draw shows (see the README's
/// "Verifying a draw") and prints its commitment and prize.
fn verify_draw(args: &[String]) -> ExitCode {
    match api::blindbox::verify_draw_command(args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
