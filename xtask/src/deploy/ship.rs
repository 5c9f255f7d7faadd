//! Images to a target without a registry: `docker save | ssh docker load`, skipping every image
//! the target already has (same image ID: under that tag, or under another, then only tagged).

use std::{
    io::Read,
    process::{Command, Stdio},
    thread,
};

use anyhow::{bail, Context, Result};

use super::ssh::{quote, Remote};
use crate::util::{secs, Timer};

/// What shipping one image did (or would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipped {
    /// Already there under its tag.
    Present,
    /// There under another tag: tagged, nothing sent.
    Tagged,
    /// Sent: its size in bytes.
    Sent(u64),
}

pub struct LocalImage {
    pub name: String,
    pub id: String,
    pub size: u64,
}

/// The local image `name` (ID and size), or a message that says how to get it.
pub fn local_image(name: &str) -> Result<LocalImage> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}} {{.Size}}", name])
        .output()
        .context("cannot run `docker`: install Docker Engine")?;
    if !out.status.success() {
        bail!(
            "image {name} is not on this machine: build it (`cargo xtask build` for berth, then \
             `docker tag berth:latest {name}` to pin a release; `cargo xtask fixtures` for the \
             test stand-ins) or pull it"
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (id, size) = text.trim().split_once(' ').unwrap_or((text.trim(), "0"));
    Ok(LocalImage {
        name: name.to_string(),
        id: id.to_string(),
        size: size.parse().unwrap_or(0),
    })
}

/// The image IDs the target has under `names`, and whether it has each `id` at all.
pub fn remote_state(remote: &Remote, images: &[LocalImage]) -> Result<Vec<(bool, bool)>> {
    let mut script = String::new();
    for image in images {
        script.push_str(&format!(
            "a=$(docker image inspect --format '{{{{.Id}}}}' {n} 2>/dev/null || :); \
             b=$(docker image inspect --format '{{{{.Id}}}}' {i} 2>/dev/null || :); \
             echo \"$a|$b\";",
            n = quote(&image.name),
            i = quote(&image.id)
        ));
    }
    let out = remote.must("checking the target's images", &script)?;
    let lines: Vec<&str> = out.lines().collect();
    if lines.len() != images.len() {
        bail!("unexpected answer from the target's docker: {out}");
    }
    Ok(images
        .iter()
        .zip(lines)
        .map(|(image, line)| {
            let (tagged, by_id) = line.split_once('|').unwrap_or(("", ""));
            (tagged == image.id, by_id == image.id)
        })
        .collect())
}

/// Free bytes where the target's Docker keeps images.
pub fn remote_free_bytes(remote: &Remote) -> Result<(String, u64)> {
    let out = remote.must(
        "checking free disk space",
        "d=$(docker info --format '{{.DockerRootDir}}'); df -Pk \"$d\" | awk -v d=\"$d\" 'NR==2 {print d, $4}'",
    )?;
    let (dir, kb) = out
        .trim()
        .split_once(' ')
        .with_context(|| format!("unexpected answer from df: {out}"))?;
    Ok((dir.to_string(), kb.parse::<u64>().unwrap_or(0) * 1024))
}

/// Tags the target's copy of `image` (known by ID) with its name.
pub fn tag(remote: &Remote, image: &LocalImage) -> Result<()> {
    remote.must(
        &format!("tagging {}", image.name),
        &format!("docker tag {} {}", quote(&image.id), quote(&image.name)),
    )?;
    Ok(())
}

/// `docker save NAME | ssh target docker load`, both ends checked.
pub fn send(remote: &Remote, image: &LocalImage) -> Result<()> {
    let timer = Timer::start();
    println!(
        "deploy: shipping {} ({}) over SSH",
        image.name,
        human(image.size)
    );
    let mut save = Command::new("docker")
        .args(["save", &image.name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `docker save`")?;
    let mut load = remote.spawn("docker load --quiet", Stdio::piped())?;
    let mut from = save.stdout.take().expect("piped");
    let mut to = load.stdin.take().expect("piped");
    let pump = thread::spawn(move || std::io::copy(&mut from, &mut to));
    let copied = pump.join().expect("copy thread");
    let mut save_err = String::new();
    if let Some(mut e) = save.stderr.take() {
        let _ = e.read_to_string(&mut save_err);
    }
    let saved = save.wait()?;
    let loaded = load.wait_with_output()?;
    if !saved.success() {
        bail!("`docker save {}` failed: {}", image.name, save_err.trim());
    }
    if !loaded.status.success() || copied.is_err() {
        let stderr = String::from_utf8_lossy(&loaded.stderr);
        if loaded.status.code() == Some(255) {
            bail!(
                "{}",
                super::ssh::classify(&remote.name, &remote.destination(), &stderr)
            );
        }
        let hint = if stderr.contains("no space left") {
            ": the target's disk is full"
        } else {
            ""
        };
        bail!(
            "`docker load` of {} on target `{}` failed{hint}: {}",
            image.name,
            remote.name,
            stderr.trim()
        );
    }
    println!(
        "deploy: shipped {} in {}",
        image.name,
        secs(timer.elapsed())
    );
    Ok(())
}

pub fn human(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes as f64 >= 1024.0 * MB {
        format!("{:.1} GiB", bytes as f64 / (1024.0 * MB))
    } else {
        format!("{:.1} MiB", bytes as f64 / MB)
    }
}
