//! One stage's view of the stack: [defaults], then each service's own settings, then the stage's
//! overrides. Tables merge key by key, lists are replaced, scalars are replaced.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::model::{
    Dependency, Healthcheck, Logging, Mount, Name, Port, Resources, Service, StackFile, Stage,
};

#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub key: String,
    pub dockerfile: String,
    pub context: String,
    pub target: Option<String>,
    pub name: String,
    pub args: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct ResolvedHealthcheck {
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ResolvedResources {
    pub cpus: Option<String>,
    pub memory: Option<String>,
    pub pids: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct ResolvedService {
    pub name: String,
    /// Where the service is declared (its key), for messages.
    pub span: std::ops::Range<usize>,
    pub description: Option<String>,
    /// The image to run: the built image's name, or the registry image.
    pub image: String,
    pub build: Option<ResolvedImage>,
    /// As declared.
    pub profiles: Vec<String>,
    /// The declared profiles plus every profile that includes one of them: compose's `profiles`.
    pub active_in: Vec<String>,
    pub data: bool,
    pub oneshot: bool,
    pub root: Option<String>,
    pub user: Option<Name>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub ports: Vec<Spanned<Port>>,
    pub volumes: Vec<Spanned<Mount>>,
    pub tmpfs: Vec<String>,
    pub networks: Vec<Name>,
    pub aliases: Vec<String>,
    pub depends_on: Vec<Dependency>,
    pub healthcheck: Option<ResolvedHealthcheck>,
    pub resources: ResolvedResources,
    pub read_only: bool,
    pub no_new_privileges: bool,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub stop_grace_period: Option<String>,
    pub stop_signal: Option<String>,
    pub shm_size: Option<String>,
    pub gpus: Option<String>,
    /// The stage's policy for long-running services; `no` for one-shot jobs.
    pub restart: String,
    pub logging: Option<Logging>,
}

#[derive(Clone, Debug)]
pub struct ResolvedStage {
    pub name: String,
    pub description: Option<String>,
    pub project: String,
    pub file: String,
    pub publish_data_services: bool,
    pub services: Vec<ResolvedService>,
    pub images: Vec<ResolvedImage>,
}

fn strings(list: &[Name]) -> Vec<String> {
    list.iter().map(|s| s.get_ref().clone()).collect()
}

fn merge_healthcheck(base: Option<Healthcheck>, over: &Option<Healthcheck>) -> Option<Healthcheck> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(Healthcheck {
            test: o.test.clone().or(b.test),
            interval: o.interval.clone().or(b.interval),
            timeout: o.timeout.clone().or(b.timeout),
            retries: o.retries.clone().or(b.retries),
            start_period: o.start_period.clone().or(b.start_period),
        }),
    }
}

fn merge_resources(base: Option<Resources>, over: &Option<Resources>) -> Option<Resources> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(Resources {
            cpus: o.cpus.clone().or(b.cpus),
            memory: o.memory.clone().or(b.memory),
            pids: o.pids.clone().or(b.pids),
        }),
    }
}

/// Profiles that enable `profile`: itself and every profile including it, transitively.
pub fn enabling_profiles(file: &StackFile, profile: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([profile.to_string()]);
    loop {
        let before = out.len();
        for (name, p) in &file.profiles {
            if p.includes.iter().any(|i| out.contains(i.get_ref())) {
                out.insert(name.get_ref().clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Profiles enabled by `requested`: those and everything they include, transitively.
pub fn profile_closure(file: &StackFile, requested: &[String]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = requested.iter().cloned().collect();
    loop {
        let before = out.len();
        for (name, p) in &file.profiles {
            if out.contains(name.get_ref()) {
                out.extend(p.includes.iter().map(|i| i.get_ref().clone()));
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

pub fn resolve_image(file: &StackFile, stage: &Stage, key: &str) -> Option<ResolvedImage> {
    let image = file.images.get(key)?;
    let over = stage.images.get(key);
    let mut args: BTreeMap<String, String> = image
        .args
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
        .collect();
    if let Some(o) = over {
        for (k, v) in &o.args {
            args.insert(k.get_ref().clone(), v.get_ref().clone());
        }
    }
    Some(ResolvedImage {
        key: key.to_string(),
        dockerfile: image.dockerfile.get_ref().clone(),
        context: image.context.get_ref().clone(),
        target: over
            .and_then(|o| o.target.as_ref())
            .or(image.target.as_ref())
            .map(|t| t.get_ref().clone()),
        name: over
            .and_then(|o| o.name.as_ref())
            .unwrap_or(&image.name)
            .get_ref()
            .to_string(),
        args,
    })
}

pub fn resolve_service(
    file: &StackFile,
    stage: &Stage,
    name: &Name,
    service: &Service,
) -> ResolvedService {
    let d = &file.defaults;
    let o = stage.services.get(name.get_ref().as_str());
    let build = service
        .build
        .as_ref()
        .and_then(|b| resolve_image(file, stage, b.get_ref()));
    let image = match (&build, &service.image) {
        (Some(b), _) => b.name.clone(),
        (None, Some(i)) => i.get_ref().to_string(),
        (None, None) => String::new(),
    };
    let mut environment: BTreeMap<String, String> = service
        .environment
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
        .collect();
    let mut healthcheck = merge_healthcheck(d.healthcheck.clone(), &service.healthcheck);
    let mut resources = merge_resources(d.resources.clone(), &service.resources);
    let mut user = service.user.clone();
    let mut command = service.command.as_deref().map(strings);
    let mut ports = service.ports.clone();
    let mut volumes = service.volumes.clone();
    let mut tmpfs = service
        .tmpfs
        .as_ref()
        .or(d.tmpfs.as_ref())
        .map(|t| strings(t))
        .unwrap_or_default();
    let mut networks = service.networks.clone();
    let mut read_only = service.read_only.or(d.read_only).unwrap_or(false);
    let mut cap_add = strings(&service.cap_add);
    let mut stop_grace_period = service
        .stop_grace_period
        .as_ref()
        .or(d.stop_grace_period.as_ref())
        .map(|s| s.get_ref().to_string());
    if let Some(o) = o {
        for (k, v) in &o.environment {
            environment.insert(k.get_ref().clone(), v.get_ref().clone());
        }
        healthcheck = merge_healthcheck(healthcheck, &o.healthcheck);
        resources = merge_resources(resources, &o.resources);
        if o.user.is_some() {
            user = o.user.clone();
        }
        if let Some(c) = &o.command {
            command = Some(strings(c));
        }
        if let Some(p) = &o.ports {
            ports = p.clone();
        }
        if let Some(v) = &o.volumes {
            volumes = v.clone();
        }
        if let Some(t) = &o.tmpfs {
            tmpfs = strings(t);
        }
        if let Some(n) = &o.networks {
            networks = n.clone();
        }
        if let Some(r) = o.read_only {
            read_only = r;
        }
        if let Some(c) = &o.cap_add {
            cap_add = strings(c);
        }
        if let Some(s) = &o.stop_grace_period {
            stop_grace_period = Some(s.get_ref().to_string());
        }
    }
    let healthcheck = healthcheck.and_then(|h| {
        Some(ResolvedHealthcheck {
            test: strings(h.test.as_ref()?),
            interval: h.interval.map(|v| v.into_inner().into()),
            timeout: h.timeout.map(|v| v.into_inner().into()),
            retries: h.retries.map(Spanned::into_inner),
            start_period: h.start_period.map(|v| v.into_inner().into()),
        })
    });
    let resources = resources
        .map(|r| ResolvedResources {
            cpus: r.cpus.map(|v| v.into_inner().into()),
            memory: r.memory.map(|v| v.into_inner().into()),
            pids: r.pids.map(Spanned::into_inner),
        })
        .unwrap_or_default();
    let mut active_in = BTreeSet::new();
    for p in &service.profiles {
        active_in.extend(enabling_profiles(file, p.get_ref()));
    }
    ResolvedService {
        name: name.get_ref().clone(),
        span: name.span(),
        description: service.description.clone(),
        image,
        build,
        profiles: strings(&service.profiles),
        active_in: active_in.into_iter().collect(),
        data: service.data,
        oneshot: service.oneshot,
        root: service.root.as_ref().map(|r| r.get_ref().clone()),
        user,
        entrypoint: service.entrypoint.as_deref().map(strings),
        command,
        environment,
        secrets: strings(&service.secrets),
        ports,
        volumes,
        tmpfs,
        networks,
        aliases: strings(&service.aliases),
        depends_on: service
            .depends_on
            .iter()
            .map(|d| d.get_ref().clone())
            .collect(),
        healthcheck,
        resources,
        read_only,
        no_new_privileges: service
            .no_new_privileges
            .or(d.no_new_privileges)
            .unwrap_or(false),
        cap_drop: service
            .cap_drop
            .as_ref()
            .or(d.cap_drop.as_ref())
            .map(|c| strings(c))
            .unwrap_or_default(),
        cap_add,
        stop_grace_period,
        stop_signal: service.stop_signal.as_ref().map(|s| s.get_ref().clone()),
        shm_size: service.shm_size.as_ref().map(|s| s.get_ref().to_string()),
        gpus: service.gpus.as_ref().map(|s| s.get_ref().clone()),
        restart: if service.oneshot {
            "no".into()
        } else {
            stage.restart.get_ref().as_str().into()
        },
        logging: stage.logging.clone(),
    }
}

pub fn resolve_stage(file: &StackFile, name: &Name, stage: &Stage) -> ResolvedStage {
    ResolvedStage {
        name: name.get_ref().clone(),
        description: stage.description.clone(),
        project: stage.project.get_ref().clone(),
        file: stage.file.get_ref().clone(),
        publish_data_services: stage.publish_data_services,
        services: file
            .services
            .iter()
            .map(|(n, s)| resolve_service(file, stage, n, s))
            .collect(),
        images: file
            .images
            .keys()
            .filter_map(|k| resolve_image(file, stage, k.get_ref()))
            .collect(),
    }
}
