//! The Hugging Face Hub's HTTP API, as much as `berth models pull` needs: a repository's files
//! at a revision (`GET /api/models/{repo}/revision/{rev}?blobs=true`, which pins the revision
//! to a commit and gives each file's size and checksum), and a file's bytes
//! (`GET /{repo}/resolve/{commit}/{file}`, redirected to a CDN for large files). Every file is
//! checked against its checksum as it streams: SHA-256 for files kept in Git LFS (the weights),
//! the Git blob id (SHA-1) for the others.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    NotFound(String),
    #[error("the model hub cannot be reached ({0}); check hub_url, the network, or use --embed-model-dir with a model copied by hand")]
    Unreachable(String),
    #[error("the model hub refused the request: {0}")]
    Refused(String),
    #[error("{file} arrived corrupted ({what}); nothing was kept: try again")]
    Corrupt { file: String, what: String },
    #[error("{0}")]
    Io(String),
}

#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub name: String,
    pub size: Option<u64>,
    /// LFS files: the SHA-256 of the content.
    pub sha256: Option<String>,
    /// Other files: the Git blob id.
    pub blob_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub commit: String,
    pub files: Vec<RemoteFile>,
}

pub struct Hub {
    base: String,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct Info {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(serde::Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "blobId", default)]
    blob_id: Option<String>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(serde::Deserialize)]
struct Lfs {
    sha256: String,
    #[serde(default)]
    size: Option<u64>,
}

/// The error with its causes (a TLS refusal says which certificate problem), the URL left out.
fn unreachable(e: reqwest::Error) -> HubError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    HubError::Unreachable(text)
}

impl Hub {
    pub fn new(base: &str, http: reqwest::Client) -> Hub {
        Hub {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The repository's files at `revision` (a branch, tag or commit).
    pub async fn repo(&self, repo: &str, revision: &str) -> Result<Repo, HubError> {
        let url = format!(
            "{}/api/models/{repo}/revision/{revision}?blobs=true",
            self.base
        );
        let resp = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(unreachable)?;
        match resp.status().as_u16() {
            200 => {}
            401 | 404 => {
                return Err(HubError::NotFound(format!(
                    "no model {repo} at revision {revision} on {} (names look like \
                     sentence-transformers/all-MiniLM-L6-v2; private models are not supported)",
                    self.base
                )))
            }
            code => return Err(HubError::Refused(format!("HTTP {code} for {repo}"))),
        }
        let info: Info = resp
            .json()
            .await
            .map_err(|e| HubError::Refused(format!("an unreadable answer for {repo}: {e}")))?;
        if info.sha.len() < 7 || !info.sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(HubError::Refused(format!("no commit id for {repo}")));
        }
        Ok(Repo {
            commit: info.sha,
            files: info
                .siblings
                .into_iter()
                .map(|s| RemoteFile {
                    size: s.lfs.as_ref().and_then(|l| l.size).or(s.size),
                    sha256: s.lfs.map(|l| l.sha256.to_ascii_lowercase()),
                    blob_id: s.blob_id.map(|b| b.to_ascii_lowercase()),
                    name: s.rfilename,
                })
                .collect(),
        })
    }

    /// Streams `file` of `repo` at `commit` into `dest`, checking its size and checksum;
    /// `progress` hears the bytes so far. Returns the content's SHA-256.
    pub async fn download(
        &self,
        repo: &str,
        commit: &str,
        file: &RemoteFile,
        dest: &Path,
        mut progress: impl FnMut(u64),
    ) -> Result<String, HubError> {
        let url = format!("{}/{repo}/resolve/{commit}/{}", self.base, file.name);
        let mut resp = self.http.get(&url).send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(HubError::Refused(format!(
                "HTTP {} for {}",
                resp.status().as_u16(),
                file.name
            )));
        }
        let io = |e: std::io::Error| HubError::Io(format!("writing {}: {e}", dest.display()));
        let mut out = std::fs::File::create(dest).map_err(io)?;
        let (mut sha256, mut len) = (Sha256::new(), 0u64);
        let mut content_for_blob = Vec::new();
        let keep_for_blob = file.sha256.is_none() && file.blob_id.is_some();
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(60), resp.chunk())
                .await
                .map_err(|_| HubError::Unreachable("no data for 60 s".into()))?
                .map_err(unreachable)?;
            let Some(chunk) = chunk else { break };
            sha256.update(&chunk);
            if keep_for_blob {
                content_for_blob.extend_from_slice(&chunk);
            }
            out.write_all(&chunk).map_err(io)?;
            len += chunk.len() as u64;
            progress(len);
        }
        out.sync_all().map_err(io)?;
        let corrupt = |what: String| HubError::Corrupt {
            file: file.name.clone(),
            what,
        };
        if let Some(size) = file.size {
            if size != len {
                return Err(corrupt(format!("{len} bytes, expected {size}")));
            }
        }
        let sha256 = hex(&sha256.finalize());
        if let Some(want) = &file.sha256 {
            if *want != sha256 {
                return Err(corrupt("its SHA-256 differs from the hub's".into()));
            }
        } else if let Some(want) = &file.blob_id {
            if *want != git_blob_id(&content_for_blob) {
                return Err(corrupt("its Git blob id differs from the hub's".into()));
            }
        }
        Ok(sha256)
    }
}

/// Git's id of a file's content: SHA-1 of `blob LEN\0CONTENT`.
pub fn git_blob_id(content: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn git_blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            super::git_blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
