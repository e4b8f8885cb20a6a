//! The image and the stack agree with the code: the Dockerfile builds with the locked
//! dependencies, copies only what exists, runs as a non-root user with a health check; and
//! every command the stack's task definitions run is one the binary has, with the flags it
//! passes. (No container daemon runs here: `infra/docker/check-build.sh` replays the build.)

use crate::common;

fn read(path: &str) -> String {
    std::fs::read_to_string(common::repo().join(path)).unwrap()
}

#[test]
fn the_dockerfile_builds_locked_copies_what_exists_and_runs_unprivileged() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "build and runtime stages"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("RUN cargo build --release --locked")),
        "the build uses Cargo.lock"
    );
    for line in lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(
                common::repo().join(src).exists(),
                "{line}: {src} is not in the repository"
            );
        }
    }
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(
        user.trim() != "root" && user.trim() != "0",
        "runs as {user}"
    );
    assert!(lines.iter().any(|l| l.starts_with("HEALTHCHECK ")));
    assert!(lines.contains(&r#"ENTRYPOINT ["encore"]"#));
}

#[test]
fn every_command_the_stack_runs_is_one_the_binary_takes() {
    let stack = read("infra/cloudformation/encore.yaml");
    let mut commands: Vec<Vec<String>> = Vec::new();
    for line in stack.lines().map(str::trim) {
        let list = line
            .strip_prefix("Command: [")
            .or_else(|| line.strip_prefix("- [").filter(|_| line.contains("--")));
        if let Some(list) = list {
            let args = list
                .trim_end_matches(']')
                .split(", ")
                .map(|a| a.trim().to_owned())
                .collect();
            commands.push(args);
        }
    }
    assert!(
        commands.len() >= 4,
        "serve, consume and both train commands: {commands:?}"
    );
    for args in commands {
        // `!Sub "s3://${ModelBucket}/..."` stands for a location: a placeholder one parses alike.
        let args: Vec<String> = args
            .into_iter()
            .map(|a| match a.starts_with("!Sub") {
                true => "s3://bucket-of-the-stack/prefix".to_owned(),
                false => a,
            })
            .collect();
        let mut probe: Vec<&str> = args.iter().map(String::as_str).collect();
        probe.push("--help");
        let (ok, out, err) = common::run_encore(&probe);
        assert!(ok, "encore {args:?}: {out}{err}");
    }
}
