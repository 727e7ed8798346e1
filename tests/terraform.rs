//! Invariants of the Terraform configurations in `terraform/<cloud>`, checked offline on the
//! parsed HCL (no terraform binary, no provider schemas).
//!
//! Each cloud has one function from the merged `Body` of its `.tf` files to a list of
//! violations, each `"<rule>: <detail>"`. The configurations must have none; the deliberately
//! broken configuration in `terraform/testdata/broken/` must trip every rule it breaks, which
//! proves the checks can fail. `scripts/tf-check.sh` runs checkov with the YAML policies in
//! `terraform/policies/` over the same directories.
//!
//! The functions read the configuration the way a reviewer would: a resource's layer comes from
//! its bucket/account name (`...-raw`, `...standard`), `for_each` over a literal set or a local
//! object is expanded (`each.key` / `each.value.x` substituted), `var.x` evaluates to its
//! default. What cannot be resolved statically is compared as text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};
use hcl::{Block, Body, Expression, ObjectKey, Value};

const LAYERS: [&str; 3] = ["raw", "standard", "archive"];
const STAGES: [&str; 4] = ["raw", "standard", "reduce", "query"];

// ---------------------------------------------------------------------------------------------
// Loading and reading HCL

fn terraform_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform")
}

fn files_with_ext(dir: &Path, exts: &[&str], recursive: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if recursive {
                out.extend(files_with_ext(&path, exts, true));
            }
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// All `.tf` files of one directory, parsed and merged into one body (as terraform does).
fn load(dir: &Path) -> Body {
    let files = files_with_ext(dir, &["tf"], false);
    assert!(!files.is_empty(), "no .tf files in {}", dir.display());
    let mut structures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        structures.extend(body.into_inner());
    }
    Body(structures)
}

fn load_cloud(cloud: &str) -> Body {
    load(&terraform_dir().join(cloud))
}

fn load_broken() -> Body {
    load(&terraform_dir().join("testdata/broken"))
}

/// Top-level blocks `kind "type" "name" { ... }` (resource / data) of one type, as (name, body).
fn labelled<'a>(body: &'a Body, kind: &str, ty: &str) -> Vec<(&'a str, &'a Body)> {
    body.blocks()
        .filter(|b| b.identifier() == kind && b.labels().first().map(|l| l.as_str()) == Some(ty))
        .filter_map(|b| b.labels().get(1).map(|name| (name.as_str(), b.body())))
        .collect()
}

fn resources<'a>(body: &'a Body, ty: &str) -> Vec<(&'a str, &'a Body)> {
    labelled(body, "resource", ty)
}

fn resource<'a>(body: &'a Body, ty: &str, name: &str) -> Option<&'a Body> {
    resources(body, ty).into_iter().find(|(n, _)| *n == name).map(|(_, b)| b)
}

/// Every resource as ("type.name", body).
fn all_resources(body: &Body) -> Vec<(String, &Body)> {
    body.blocks()
        .filter(|b| b.identifier() == "resource" && b.labels().len() == 2)
        .map(|b| (format!("{}.{}", b.labels()[0].as_str(), b.labels()[1].as_str()), b.body()))
        .collect()
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// Nested blocks with this identifier (not counting `dynamic` blocks).
fn sub<'a>(body: &'a Body, ident: &str) -> Vec<&'a Body> {
    body.blocks().filter(|b| b.identifier() == ident).map(Block::body).collect()
}

/// Nested blocks along a path, e.g. `["blob_properties", "delete_retention_policy"]`.
fn path<'a>(body: &'a Body, idents: &[&str]) -> Vec<&'a Body> {
    let mut cur = vec![body];
    for ident in idents {
        cur = cur.into_iter().flat_map(|b| sub(b, ident)).collect();
    }
    cur
}

fn render(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_default()
}

fn key_str(key: &ObjectKey) -> String {
    key.to_string()
}

fn local<'a>(body: &'a Body, name: &str) -> Option<&'a Expression> {
    sub(body, "locals").into_iter().find_map(|b| attr(b, name))
}

fn variable<'a>(body: &'a Body, name: &str) -> Option<&'a Body> {
    labelled_one(body, "variable", name)
}

fn labelled_one<'a>(body: &'a Body, kind: &str, label: &str) -> Option<&'a Body> {
    body.blocks()
        .find(|b| b.identifier() == kind && b.labels().first().map(|l| l.as_str()) == Some(label))
        .map(Block::body)
}

/// Evaluates an expression with `var` bound to every variable's default; None when it needs
/// anything else (resources, locals, functions).
fn eval(body: &Body, expr: &Expression) -> Option<Value> {
    let mut vars = hcl::Map::new();
    for b in body.blocks().filter(|b| b.identifier() == "variable") {
        if let (Some(name), Some(default)) = (b.labels().first(), attr(b.body(), "default")) {
            if let Ok(v) = default.evaluate(&Context::new()) {
                vars.insert(name.as_str().to_string(), v);
            }
        }
    }
    let mut ctx = Context::new();
    ctx.declare_var("var", Value::Object(vars));
    expr.evaluate(&ctx).ok()
}

fn eval_attr(body: &Body, res: &Body, key: &str) -> Option<Value> {
    attr(res, key).and_then(|e| eval(body, e))
}

fn is_true(body: &Body, res: &Body, key: &str) -> bool {
    eval_attr(body, res, key) == Some(Value::Bool(true))
}

fn is_false(body: &Body, res: &Body, key: &str) -> bool {
    eval_attr(body, res, key) == Some(Value::Bool(false))
}

fn str_attr(body: &Body, res: &Body, key: &str) -> Option<String> {
    match eval_attr(body, res, key)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn num_attr(body: &Body, res: &Body, key: &str) -> Option<f64> {
    match eval_attr(body, res, key)? {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// The identifier (or index) that follows `prefix` in `text`: `google_service_account.` in
/// `"serviceAccount:${google_service_account.stage["raw"].email}"` gives ("stage", Some("raw")).
fn reference(text: &str, prefix: &str) -> Option<(String, Option<String>)> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    let ident: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    if ident.is_empty() {
        return None;
    }
    let after = &rest[ident.len()..];
    let index = after.strip_prefix("[\"").and_then(|s| s.split_once("\"]")).map(|(i, _)| i.to_string());
    Some((ident, index))
}

/// Every reference to `prefix` in `text` (see [`reference`]).
fn references(text: &str, prefix: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find(prefix) {
        if let Some(r) = reference(&rest[pos..], prefix) {
            out.push(r);
        }
        rest = &rest[pos + prefix.len()..];
    }
    out
}

/// One instance of a resource after `for_each` expansion: its key and its attributes rendered
/// as text with `each.key` / `each.value[.field]` substituted.
struct Instance<'a> {
    key: String,
    root: &'a Body,
    body: &'a Body,
    subst: Vec<(String, String)>,
}

impl Instance<'_> {
    fn text(&self, key: &str) -> String {
        attr(self.body, key).map(|e| self.substitute(render(e))).unwrap_or_default()
    }

    /// Substitutes `each.*`, then expands lookups of literal local objects
    /// (`local.scope["raw"]` becomes that entry's expression).
    fn substitute(&self, mut text: String) -> String {
        for (from, to) in &self.subst {
            text = text.replace(from, to);
        }
        for b in sub(self.root, "locals") {
            for a in b.attributes() {
                if let Expression::Object(entries) = a.expr() {
                    for (k, v) in entries {
                        let key = key_str(k);
                        let value = render(v);
                        text = text.replace(&format!("local.{}[\"{key}\"]", a.key()), &value);
                        text = text.replace(&format!("local.{}.{key}", a.key()), &value);
                    }
                }
            }
        }
        text
    }

    /// A string attribute's value (quotes stripped), when it is a plain string after substitution.
    fn string(&self, key: &str) -> Option<String> {
        let t = self.text(key);
        let t = t.trim();
        (t.len() >= 2 && t.starts_with('"') && t.ends_with('"') && !t.contains("${"))
            .then(|| t[1..t.len() - 1].to_string())
    }
}

/// Resolves `local.x` (repeatedly) to the expression it names.
fn resolve<'a>(body: &'a Body, mut expr: &'a Expression) -> &'a Expression {
    for _ in 0..8 {
        match render(expr).trim().strip_prefix("local.").and_then(|name| local(body, name)) {
            Some(e) => expr = e,
            None => break,
        }
    }
    expr
}

/// The instances of a resource: one per element of a statically known `for_each` (a literal
/// list/set/object, possibly behind `local.x` and `toset(...)`), else one instance with key "*".
fn instances<'a>(body: &'a Body, res: &'a Body) -> Vec<Instance<'a>> {
    let single = || vec![Instance { key: "*".into(), root: body, body: res, subst: Vec::new() }];
    let Some(for_each) = attr(res, "for_each") else {
        return single();
    };
    let mut expr = resolve(body, for_each);
    if let Expression::FuncCall(call) = expr {
        if call.name.to_string() == "toset" && call.args.len() == 1 {
            expr = resolve(body, &call.args[0]);
        }
    }
    match expr {
        Expression::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Expression::String(s) => Some(Instance {
                    key: s.clone(),
                    root: body,
                    body: res,
                    subst: vec![("each.key".into(), format!("\"{s}\"")), ("each.value".into(), format!("\"{s}\""))],
                }),
                _ => None,
            })
            .collect(),
        Expression::Object(entries) => entries
            .iter()
            .map(|(k, v)| {
                let key = key_str(k);
                let mut subst = Vec::new();
                if let Expression::Object(fields) = v {
                    for (fk, fv) in fields {
                        subst.push((format!("each.value.{}", key_str(fk)), render(fv)));
                    }
                }
                subst.push(("each.value".into(), render(v)));
                subst.push(("each.key".into(), format!("\"{key}\"")));
                Instance { key, root: body, body: res, subst }
            })
            .collect(),
        _ => single(),
    }
}

/// The layer a bucket/account belongs to, from its name's ending (`acme-raw`, `acmestandard`).
fn layer_of_name(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches('"');
    LAYERS.into_iter().find(|l| name.ends_with(&format!("-{l}")) || name.ends_with(l))
}

/// (resource name, layer) of every storage resource of this type, by its name attribute.
fn storage_layers<'a>(body: &'a Body, ty: &str, name_attr: &str) -> Vec<(&'a str, Option<&'static str>, &'a Body)> {
    resources(body, ty)
        .into_iter()
        .map(|(n, b)| (n, attr(b, name_attr).and_then(|e| layer_of_name(&render(e))), b))
        .collect()
}

/// Exactly one storage resource per layer; returns layer -> (resource name, body).
fn one_per_layer<'a>(
    v: &mut Vec<String>,
    body: &'a Body,
    ty: &str,
    name_attr: &str,
) -> BTreeMap<&'static str, (&'a str, &'a Body)> {
    let mut by_layer: BTreeMap<&'static str, Vec<(&'a str, &'a Body)>> = BTreeMap::new();
    for (name, layer, b) in storage_layers(body, ty, name_attr) {
        match layer {
            Some(l) => by_layer.entry(l).or_default().push((name, b)),
            None => {
                v.push(format!("layers: {ty}.{name} belongs to no layer (its name must end with raw/standard/archive)"))
            }
        }
    }
    let mut out = BTreeMap::new();
    for layer in LAYERS {
        match by_layer.get(layer).map(Vec::as_slice) {
            Some([one]) => {
                out.insert(layer, *one);
            }
            Some(many) if many.len() > 1 => {
                v.push(format!("layers: {} {ty} resources for the {layer} layer", many.len()))
            }
            _ => v.push(format!("layers: no {ty} for the {layer} layer")),
        }
    }
    out
}

/// `force_destroy` is absent, false, or a variable whose default is false.
fn check_force_destroy(v: &mut Vec<String>, body: &Body, what: &str, res: &Body) {
    if let Some(e) = attr(res, "force_destroy") {
        if eval(body, e) != Some(Value::Bool(false)) {
            v.push(format!("force-destroy: {what} has force_destroy = {} (must default to false)", render(e).trim()));
        }
    }
}

fn check_tags(v: &mut Vec<String>, res: &Body, what: &str, key: &str) {
    if attr(res, key).is_none() {
        v.push(format!("labels: {what} has no {key}"));
    }
}

/// Roles, actions or permissions that must never be granted.
fn forbidden_role(role: &str) -> bool {
    let r = role.trim().trim_matches('"');
    matches!(
        r,
        "roles/owner"
            | "roles/editor"
            | "roles/storage.admin"
            | "roles/storage.objectAdmin"
            | "roles/secretmanager.admin"
            | "Owner"
            | "Contributor"
            | "User Access Administrator"
            | "Storage Blob Data Owner"
            | "Storage Account Contributor"
            | "Key Vault Administrator"
            | "*"
    ) || r.ends_with(".admin")
        || r.contains('*')
}

fn wildcard_action(action: &str) -> bool {
    let a = action.trim().trim_matches('"');
    a == "*" || a.ends_with(":*") || a == "*:*"
}

// ---------------------------------------------------------------------------------------------
// GCP

/// Violations of the GCP invariants (empty when the configuration is right).
fn gcp_violations(body: &Body) -> Vec<String> {
    let mut v = Vec::new();
    let buckets = one_per_layer(&mut v, body, "google_storage_bucket", "name");

    for (name, _, b) in storage_layers(body, "google_storage_bucket", "name") {
        let what = format!("google_storage_bucket.{name}");
        let layer = buckets.iter().find(|(_, (n, _))| *n == name).map(|(l, _)| *l);
        let class = str_attr(body, b, "storage_class").unwrap_or_else(|| "STANDARD".into());
        match layer {
            Some("standard") if class != "STANDARD" => v.push(format!("hot-class: {what} is {class}, not STANDARD")),
            Some("raw" | "archive") if !["NEARLINE", "COLDLINE", "ARCHIVE"].contains(&class.as_str()) => {
                v.push(format!("cold-class: {what} is {class}, not NEARLINE/COLDLINE/ARCHIVE"))
            }
            _ => {}
        }

        let rules = sub(b, "lifecycle_rule");
        if rules.is_empty() {
            v.push(format!("lifecycle: {what} has no lifecycle_rule"));
        }
        let actions: Vec<(String, Option<String>)> = rules
            .iter()
            .flat_map(|r| sub(r, "action"))
            .map(|a| (str_attr(body, a, "type").unwrap_or_default(), str_attr(body, a, "storage_class")))
            .collect();
        if !actions.iter().any(|(t, _)| t == "AbortIncompleteMultipartUpload") {
            v.push(format!("multipart: {what} has no AbortIncompleteMultipartUpload lifecycle rule"));
        }
        if matches!(layer, Some("raw" | "archive")) {
            for target in ["COLDLINE", "ARCHIVE"] {
                if !actions.iter().any(|(t, c)| t == "SetStorageClass" && c.as_deref() == Some(target)) {
                    v.push(format!("lifecycle: {what} never moves objects to {target}"));
                }
            }
        }

        if str_attr(body, b, "public_access_prevention").as_deref() != Some("enforced") {
            v.push(format!("public-access: {what} does not set public_access_prevention = \"enforced\""));
        }
        if !is_true(body, b, "uniform_bucket_level_access") {
            v.push(format!("uniform-access: {what} does not set uniform_bucket_level_access = true"));
        }
        let soft_delete = sub(b, "soft_delete_policy")
            .iter()
            .filter_map(|p| num_attr(body, p, "retention_duration_seconds"))
            .any(|s| s >= 7.0 * 86400.0);
        if !soft_delete && sub(b, "retention_policy").is_empty() {
            v.push(format!(
                "soft-delete: {what} has no soft_delete_policy of at least 7 days (nor a retention_policy)"
            ));
        }
        if !sub(b, "versioning").iter().any(|ver| is_true(body, ver, "enabled"))
            && sub(b, "retention_policy").is_empty()
        {
            v.push(format!("soft-delete: {what} has neither versioning nor a retention policy"));
        }
        check_force_destroy(&mut v, body, &what, b);
        check_tags(&mut v, b, &what, "labels");
    }

    let providers: Vec<&Body> = body.blocks().filter(|b| b.identifier() == "provider").map(Block::body).collect();
    if !providers.iter().any(|p| attr(p, "default_labels").is_some()) {
        v.push("labels: the google provider has no default_labels".into());
    }

    gcp_iam_violations(body, &buckets, &mut v);
    gcp_scheduling_violations(body, &mut v);
    gcp_bigquery_violations(body, &mut v);
    v
}

/// Which stage (or "scheduler", or a public member) an IAM member string names.
fn gcp_member(text: &str) -> String {
    if text.contains("allUsers") || text.contains("allAuthenticatedUsers") {
        return "public".into();
    }
    match reference(text, "google_service_account.") {
        Some((_, Some(index))) => index,
        Some((name, None)) => name,
        None => text.trim().to_string(),
    }
}

fn gcp_iam_violations(body: &Body, buckets: &BTreeMap<&'static str, (&str, &Body)>, v: &mut Vec<String>) {
    let bucket_layer: BTreeMap<&str, &str> = buckets.iter().map(|(l, (n, _))| (*n, *l)).collect();

    // Every IAM grant anywhere: no admin/owner roles, no public members, no project-level
    // grants to a stage or the scheduler.
    for (ty, res) in all_resources(body) {
        let is_iam = ty.contains("_iam_member.") || ty.contains("_iam_binding.") || ty.contains("_iam_policy.");
        if !is_iam {
            continue;
        }
        for inst in instances(body, res) {
            let role = inst.text("role");
            if forbidden_role(&role) {
                v.push(format!("iam-admin: {ty}[{}] grants {}", inst.key, role.trim()));
            }
            let member = gcp_member(&format!("{} {}", inst.text("member"), inst.text("members")));
            if member == "public" {
                v.push(format!(
                    "public-member: {ty}[{}] grants {} to allUsers/allAuthenticatedUsers",
                    inst.key,
                    role.trim()
                ));
            }
            if ty.starts_with("google_project_iam")
                || ty.starts_with("google_organization_iam")
                || ty.starts_with("google_folder_iam")
            {
                v.push(format!(
                    "iam-scope: {ty}[{}] grants {} above the bucket/secret/job level",
                    inst.key,
                    role.trim()
                ));
            }
        }
    }

    // Bucket grants follow the stage matrix exactly.
    let allowed: BTreeSet<(&str, &str, &str)> = [
        ("raw", "raw", "roles/storage.objectCreator"),
        ("raw", "raw", "roles/storage.objectViewer"),
        ("standard", "raw", "roles/storage.objectViewer"),
        ("standard", "standard", "roles/storage.objectUser"),
        ("reduce", "standard", "roles/storage.objectViewer"),
        ("reduce", "archive", "roles/storage.objectUser"),
        ("query", "standard", "roles/storage.objectViewer"),
        ("query", "archive", "roles/storage.objectViewer"),
    ]
    .into();
    let mut granted = BTreeSet::new();
    for ty in ["google_storage_bucket_iam_member", "google_storage_bucket_iam_binding"] {
        for (name, res) in resources(body, ty) {
            for inst in instances(body, res) {
                let stage = gcp_member(&format!("{} {}", inst.text("member"), inst.text("members")));
                let role = inst.string("role").unwrap_or_else(|| inst.text("role"));
                let bucket =
                    reference(&inst.text("bucket"), "google_storage_bucket.").map(|(n, _)| n).unwrap_or_default();
                let layer = bucket_layer.get(bucket.as_str()).copied().unwrap_or("?");
                if stage == "raw" && layer != "raw" {
                    v.push(format!(
                        "raw-isolation: {ty}.{name}[{}] gives the raw identity {role} on the {layer} bucket",
                        inst.key
                    ));
                }
                if !allowed.contains(&(stage.as_str(), layer, role.as_str())) {
                    v.push(format!(
                        "least-privilege: {ty}.{name}[{}] grants {role} on the {layer} bucket to {stage}",
                        inst.key
                    ));
                }
                granted.insert((stage, layer.to_string(), role));
            }
        }
    }
    for (stage, layer, role) in &allowed {
        if !granted.contains(&(stage.to_string(), layer.to_string(), role.to_string())) {
            v.push(format!("least-privilege: {stage} lacks {role} on the {layer} bucket it needs"));
        }
    }

    // The private key: only the standard identity may access it.
    let mut private_key_readers = BTreeSet::new();
    for ty in ["google_secret_manager_secret_iam_member", "google_secret_manager_secret_iam_binding"] {
        for (name, res) in resources(body, ty) {
            for inst in instances(body, res) {
                if !inst.text("secret_id").contains("private_key") {
                    continue;
                }
                let who = gcp_member(&format!("{} {}", inst.text("member"), inst.text("members")));
                if who != "standard" {
                    v.push(format!("raw-private-key: {ty}.{name} lets {who} read the private key (only standard may)"));
                }
                private_key_readers.insert(who);
            }
        }
    }
    if !private_key_readers.contains("standard") {
        v.push("least-privilege: the standard identity cannot read the private key secret".into());
    }

    // The scheduler identity holds only roles/run.invoker, and only on Cloud Run jobs.
    for (ty, res) in all_resources(body) {
        if !ty.contains("_iam_") {
            continue;
        }
        for inst in instances(body, res) {
            if gcp_member(&inst.text("member")) == "scheduler" {
                let role = inst.string("role").unwrap_or_default();
                if role != "roles/run.invoker" || !ty.starts_with("google_cloud_run_v2_job_iam_member.") {
                    v.push(format!("scheduler: {ty} gives the scheduler {role} (only roles/run.invoker on the jobs)"));
                }
            }
        }
    }
}

fn gcp_scheduling_violations(body: &Body, v: &mut Vec<String>) {
    let jobs: BTreeSet<String> = resources(body, "google_cloud_run_v2_job")
        .into_iter()
        .flat_map(|(_, res)| instances(body, res).into_iter().map(|i| i.key))
        .collect();
    for stage in STAGES {
        if !jobs.contains(stage) {
            v.push(format!("scheduling: no Cloud Run job for the {stage} stage"));
        }
    }
    let schedulers = resources(body, "google_cloud_scheduler_job");
    if schedulers.is_empty() {
        v.push("scheduling: no Cloud Scheduler job".into());
    }
    for (name, res) in schedulers {
        for target in sub(res, "http_target") {
            let uri = attr(target, "uri").map(render).unwrap_or_default();
            if !uri.contains(":run") || !uri.contains("run.googleapis.com") {
                v.push(format!(
                    "scheduling: google_cloud_scheduler_job.{name} does not call the Cloud Run jobs :run API"
                ));
            }
            let email = sub(target, "oauth_token")
                .iter()
                .filter_map(|t| attr(t, "service_account_email"))
                .map(render)
                .collect::<String>();
            if gcp_member(&email) != "scheduler" {
                v.push(format!("scheduling: google_cloud_scheduler_job.{name} does not use the scheduler service account's OAuth token"));
            }
        }
    }
}

fn gcp_bigquery_violations(body: &Body, v: &mut Vec<String>) {
    let tables = resources(body, "google_bigquery_table");
    if tables.is_empty() {
        v.push("bigquery: no external tables".into());
    }
    let mut layers = BTreeSet::new();
    for (name, res) in tables {
        // What the tables are made of: the hive prefix, and the for_each source it is filled from.
        let mut text = attr(res, "for_each").map(|e| render(resolve(body, e))).unwrap_or_default();
        for ext in sub(res, "external_data_configuration") {
            let hive = sub(ext, "hive_partitioning_options");
            let ok = hive.iter().any(|h| {
                matches!(attr(h, "mode"), Some(Expression::String(m)) if m == "AUTO" || m == "CUSTOM")
                    && attr(h, "source_uri_prefix").is_some()
            });
            if !ok {
                v.push(format!("bigquery: google_bigquery_table.{name} has no hive partitioning (mode AUTO/CUSTOM + source_uri_prefix)"));
            }
            for h in hive {
                text += &attr(h, "source_uri_prefix").map(render).unwrap_or_default();
            }
        }
        for layer in ["standard", "archive"] {
            if text.contains(&format!("google_storage_bucket.{layer}")) && text.contains(&format!("\"{layer}\"")) {
                layers.insert(layer);
            }
        }
    }
    for layer in ["standard", "archive"] {
        if !layers.contains(layer) {
            v.push(format!("bigquery: no external table over the {layer} layer"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AWS

/// The S3 bucket resource names a satellite resource covers: its own `bucket` reference, or
/// every bucket of a `for_each` over a local object of buckets.
fn aws_covered_buckets(body: &Body, res: &Body) -> Vec<String> {
    instances(body, res).iter().flat_map(|i| references(&i.text("bucket"), "aws_s3_bucket.")).map(|(n, _)| n).collect()
}

/// Violations of the AWS invariants.
fn aws_violations(body: &Body) -> Vec<String> {
    let mut v = Vec::new();
    one_per_layer(&mut v, body, "aws_s3_bucket", "bucket");
    let all_buckets: Vec<(&str, Option<&str>, &Body)> = storage_layers(body, "aws_s3_bucket", "bucket");

    let covered = |ty: &str, check: &dyn Fn(&Body) -> bool| -> BTreeSet<String> {
        resources(body, ty)
            .into_iter()
            .filter(|(_, r)| check(r))
            .flat_map(|(_, r)| aws_covered_buckets(body, r))
            .collect()
    };
    let pab = covered("aws_s3_bucket_public_access_block", &|r| {
        ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]
            .iter()
            .all(|k| is_true(body, r, k))
    });
    let owner_enforced = covered("aws_s3_bucket_ownership_controls", &|r| {
        sub(r, "rule").iter().any(
            |rule| matches!(attr(rule, "object_ownership"), Some(Expression::String(s)) if s == "BucketOwnerEnforced"),
        )
    });
    let versioned = covered("aws_s3_bucket_versioning", &|r| {
        sub(r, "versioning_configuration")
            .iter()
            .any(|c| matches!(attr(c, "status"), Some(Expression::String(s)) if s == "Enabled"))
    });
    let tls_only = covered("aws_s3_bucket_policy", &|r| {
        // The policy document it uses denies requests without TLS.
        let text = attr(r, "policy").map(render).unwrap_or_default();
        references(&text, "data.aws_iam_policy_document.").iter().any(|(doc, _)| {
            labelled(body, "data", "aws_iam_policy_document").iter().any(|(n, d)| {
                n == doc
                    && sub(d, "statement").iter().any(|s| {
                        matches!(attr(s, "effect"), Some(Expression::String(e)) if e == "Deny")
                            && sub(s, "condition").iter().any(|c| {
                                attr(c, "variable").map(render).unwrap_or_default().contains("aws:SecureTransport")
                                    && attr(c, "values").map(render).unwrap_or_default().contains("false")
                            })
                    })
            })
        })
    });

    for (name, layer, b) in &all_buckets {
        let what = format!("aws_s3_bucket.{name}");
        let name = name.to_string();
        for (set, rule, detail) in [
            (&pab, "public-access", "no public access block with all four settings true"),
            (&owner_enforced, "uniform-access", "no ownership controls with BucketOwnerEnforced (ACLs disabled)"),
            (&versioned, "soft-delete", "no versioning"),
            (&tls_only, "tls-only", "no bucket policy denying aws:SecureTransport = false"),
        ] {
            if !set.contains(&name) {
                v.push(format!("{rule}: {what} has {detail}"));
            }
        }
        check_force_destroy(&mut v, body, &what, b);

        let lifecycles: Vec<&Body> = resources(body, "aws_s3_bucket_lifecycle_configuration")
            .into_iter()
            .filter(|(_, r)| aws_covered_buckets(body, r).contains(&name))
            .map(|(_, r)| r)
            .collect();
        if lifecycles.is_empty() {
            v.push(format!("lifecycle: {what} has no lifecycle configuration"));
        }
        let rules: Vec<&Body> = lifecycles.iter().flat_map(|l| sub(l, "rule")).collect();
        if !rules.iter().any(|r| !sub(r, "abort_incomplete_multipart_upload").is_empty()) {
            v.push(format!("multipart: {what} does not abort incomplete multipart uploads"));
        }
        if !lifecycles.is_empty() && !rules.iter().any(|r| !sub(r, "noncurrent_version_expiration").is_empty()) {
            v.push(format!("soft-delete: {what} never expires noncurrent versions"));
        }
        let classes: Vec<String> = rules
            .iter()
            .flat_map(|r| sub(r, "transition"))
            .filter_map(|t| str_attr(body, t, "storage_class"))
            .collect();
        let cold = classes.iter().any(|c| c == "STANDARD_IA")
            && classes.iter().any(|c| c.starts_with("GLACIER") || c == "DEEP_ARCHIVE");
        match layer {
            Some("raw" | "archive") if !cold => v.push(format!(
                "cold-class: {what} does not transition to STANDARD_IA and a Glacier class (has {classes:?})"
            )),
            Some("standard") if !classes.is_empty() => {
                v.push(format!("hot-class: {what} (standard layer) transitions to {classes:?}"))
            }
            _ => {}
        }
    }

    // Tags on everything: the provider's default_tags.
    let providers: Vec<&Body> = body.blocks().filter(|b| b.identifier() == "provider").map(Block::body).collect();
    if !providers.iter().any(|p| sub(p, "default_tags").iter().any(|d| attr(d, "tags").is_some())) {
        v.push("labels: the aws provider has no default_tags".into());
    }

    aws_iam_violations(body, &mut v);
    aws_scheduling_violations(body, &mut v);
    v
}

/// A policy statement reduced to what the checks need.
struct Statement {
    source: String,
    allow: bool,
    actions: Vec<String>,
    resources: String,
}

/// Statements of every `aws_iam_policy_document` data source, and of every `jsonencode` policy
/// literal (objects with Effect/Action keys), wherever they appear.
fn aws_statements(body: &Body) -> Vec<Statement> {
    let mut out = Vec::new();
    for (name, doc) in labelled(body, "data", "aws_iam_policy_document") {
        for s in sub(doc, "statement") {
            let actions = match attr(s, "actions") {
                Some(Expression::Array(items)) => {
                    items.iter().map(|a| render(a).trim().trim_matches('"').to_string()).collect()
                }
                Some(e) => vec![render(e)],
                None => Vec::new(),
            };
            out.push(Statement {
                source: format!("data.aws_iam_policy_document.{name}"),
                allow: !matches!(attr(s, "effect"), Some(Expression::String(e)) if e == "Deny"),
                actions,
                resources: attr(s, "resources").map(render).unwrap_or_default(),
            });
        }
    }
    fn walk(source: &str, e: &Expression, out: &mut Vec<Statement>) {
        match e {
            Expression::Object(obj) => {
                let get = |k: &str| obj.iter().find(|(key, _)| key_str(key) == k).map(|(_, v)| v);
                if let (Some(effect), Some(action)) = (get("Effect"), get("Action")) {
                    let actions = match action {
                        Expression::Array(items) => {
                            items.iter().map(|a| render(a).trim().trim_matches('"').to_string()).collect()
                        }
                        other => vec![render(other).trim().trim_matches('"').to_string()],
                    };
                    out.push(Statement {
                        source: source.to_string(),
                        allow: !render(effect).contains("Deny"),
                        actions,
                        resources: get("Resource").map(render).unwrap_or_default(),
                    });
                }
                obj.iter().for_each(|(_, v)| walk(source, v, out));
            }
            Expression::Array(items) => items.iter().for_each(|i| walk(source, i, out)),
            Expression::FuncCall(call) => call.args.iter().for_each(|a| walk(source, a, out)),
            _ => {}
        }
    }
    for (ty, res) in all_resources(body) {
        for a in res.attributes() {
            walk(&ty, a.expr(), &mut out);
        }
    }
    out
}

fn aws_iam_violations(body: &Body, v: &mut Vec<String>) {
    let statements = aws_statements(body);
    for s in &statements {
        for a in &s.actions {
            if s.allow && wildcard_action(a) {
                v.push(format!("wildcard-action: {} allows {a}", s.source));
            }
        }
    }

    // Which policy document (or literal) each role policy attaches to which role.
    let mut attached: Vec<(String, String, String)> = Vec::new(); // (role kind, stage, policy source)
    for (name, res) in resources(body, "aws_iam_role_policy") {
        for inst in instances(body, res) {
            let role =
                reference(&inst.text("role"), "aws_iam_role.").map(|(kind, idx)| (kind.clone(), idx.unwrap_or(kind)));
            let policy = inst.text("policy");
            let source = reference(&policy, "data.aws_iam_policy_document.")
                .map(|(d, _)| format!("data.aws_iam_policy_document.{d}"))
                .unwrap_or_else(|| format!("aws_iam_role_policy.{name}"));
            if let Some((kind, stage)) = role {
                attached.push((kind, stage, source));
            }
        }
    }
    let stage_of = |kind: &str, stage: &str| -> String {
        if STAGES.contains(&stage) {
            stage.to_string()
        } else if STAGES.contains(&kind) {
            kind.to_string()
        } else {
            stage.to_string()
        }
    };

    // The private key: only policies attached to standard's roles name the secret.
    let mut standard_reads_key = false;
    for s in statements.iter().filter(|s| s.allow && s.resources.contains("aws_secretsmanager_secret.private_key")) {
        let holders: Vec<String> =
            attached.iter().filter(|(_, _, src)| *src == s.source).map(|(k, st, _)| stage_of(k, st)).collect();
        for h in &holders {
            if h == "standard" {
                standard_reads_key = true;
            } else {
                v.push(format!("raw-private-key: {} (attached to {h}) grants the private key secret", s.source));
            }
        }
    }
    if !standard_reads_key {
        v.push("least-privilege: no policy lets the standard stage read the private key secret".into());
    }

    // The raw stage: its policies touch only the raw bucket, and never delete.
    let raw_sources: BTreeSet<&String> =
        attached.iter().filter(|(k, st, _)| stage_of(k, st) == "raw").map(|(_, _, src)| src).collect();
    if raw_sources.is_empty() {
        v.push("least-privilege: no policy is attached to a raw role".into());
    }
    let layer_of_bucket: BTreeMap<String, &str> = storage_layers(body, "aws_s3_bucket", "bucket")
        .into_iter()
        .filter_map(|(n, l, _)| l.map(|l| (n.to_string(), l)))
        .collect();
    for s in statements.iter().filter(|s| s.allow && raw_sources.contains(&s.source)) {
        for (bucket, _) in references(&s.resources, "aws_s3_bucket.") {
            if layer_of_bucket.get(&bucket).copied() != Some("raw") {
                v.push(format!("raw-isolation: {} lets the raw stage use aws_s3_bucket.{bucket}", s.source));
            }
        }
        if s.resources.trim().trim_matches(|c| c == '[' || c == ']').trim().trim_matches('"') == "*"
            && s.actions.iter().any(|a| a.starts_with("s3:"))
        {
            v.push(format!("raw-isolation: {} lets the raw stage use every bucket", s.source));
        }
        if s.actions
            .iter()
            .any(|a| a == "s3:DeleteObject" || a == "s3:DeleteObjectVersion" || a.starts_with("secretsmanager:"))
        {
            v.push(format!("raw-isolation: {} lets the raw stage {:?}", s.source, s.actions));
        }
    }

    // The scheduler role: only ecs:RunTask and iam:PassRole.
    for s in statements.iter().filter(|s| s.allow) {
        let on_scheduler = attached.iter().any(|(k, _, src)| k == "scheduler" && *src == s.source);
        if on_scheduler && s.actions.iter().any(|a| a != "ecs:RunTask" && a != "iam:PassRole") {
            v.push(format!("scheduler: {} gives the scheduler {:?}", s.source, s.actions));
        }
    }
}

fn aws_scheduling_violations(body: &Body, v: &mut Vec<String>) {
    let task_defs: BTreeSet<String> = resources(body, "aws_ecs_task_definition")
        .into_iter()
        .flat_map(|(_, r)| instances(body, r).into_iter().map(|i| i.key))
        .collect();
    for stage in STAGES {
        if !task_defs.contains(stage) {
            v.push(format!("scheduling: no ECS task definition for the {stage} stage"));
        }
    }
    let schedules = resources(body, "aws_scheduler_schedule");
    if schedules.is_empty() {
        v.push("scheduling: no EventBridge Scheduler schedule".into());
    }
    for (name, s) in schedules {
        let ok = sub(s, "target").iter().any(|t| {
            attr(t, "role_arn").map(render).unwrap_or_default().contains("aws_iam_role.scheduler")
                && sub(t, "ecs_parameters")
                    .iter()
                    .any(|p| matches!(attr(p, "launch_type"), Some(Expression::String(l)) if l == "FARGATE"))
        });
        if !ok {
            v.push(format!(
                "scheduling: aws_scheduler_schedule.{name} does not run a Fargate task with the scheduler role"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Azure

/// Violations of the Azure invariants.
fn azure_violations(body: &Body) -> Vec<String> {
    let mut v = Vec::new();
    one_per_layer(&mut v, body, "azurerm_storage_account", "name");
    let layer_of: BTreeMap<String, &str> = storage_layers(body, "azurerm_storage_account", "name")
        .into_iter()
        .filter_map(|(n, l, _)| l.map(|l| (n.to_string(), l)))
        .collect();

    for (name, layer, b) in storage_layers(body, "azurerm_storage_account", "name") {
        let what = format!("azurerm_storage_account.{name}");
        let tier = str_attr(body, b, "access_tier").unwrap_or_else(|| "Hot".into());
        match layer {
            Some("standard") if tier != "Hot" => v.push(format!("hot-class: {what} is {tier}, not Hot")),
            Some("raw" | "archive") if tier != "Cool" && tier != "Cold" => {
                v.push(format!("cold-class: {what} is {tier}, not Cool"))
            }
            _ => {}
        }
        if !is_false(body, b, "allow_nested_items_to_be_public") {
            v.push(format!("public-access: {what} does not set allow_nested_items_to_be_public = false"));
        }
        if !is_false(body, b, "shared_access_key_enabled") {
            v.push(format!("uniform-access: {what} allows shared keys (RBAC only: shared_access_key_enabled = false)"));
        }
        if str_attr(body, b, "min_tls_version").as_deref() != Some("TLS1_2") {
            v.push(format!("tls-only: {what} does not require TLS 1.2"));
        }
        if !is_true(body, b, "https_traffic_only_enabled") {
            v.push(format!("tls-only: {what} does not set https_traffic_only_enabled = true"));
        }
        let days = |p: &[&str]| path(b, p).iter().filter_map(|r| num_attr(body, r, "days")).fold(0.0, f64::max);
        if days(&["blob_properties", "delete_retention_policy"]) < 7.0 {
            v.push(format!("soft-delete: {what} keeps deleted blobs less than 7 days"));
        }
        if days(&["blob_properties", "container_delete_retention_policy"]) < 7.0 {
            v.push(format!("soft-delete: {what} keeps deleted containers less than 7 days"));
        }
        if !path(b, &["blob_properties"]).iter().any(|p| is_true(body, p, "versioning_enabled")) {
            v.push(format!("soft-delete: {what} has no blob versioning"));
        }
        let managed = resources(body, "azurerm_storage_management_policy").iter().any(|(_, p)| {
            attr(p, "storage_account_id")
                .map(render)
                .unwrap_or_default()
                .contains(&format!("azurerm_storage_account.{name}."))
        });
        if !managed {
            v.push(format!("lifecycle: {what} has no storage management policy"));
        }
        let containers: Vec<&Body> = resources(body, "azurerm_storage_container")
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| {
                let t = format!(
                    "{} {}",
                    attr(c, "storage_account_id").map(render).unwrap_or_default(),
                    attr(c, "storage_account_name").map(render).unwrap_or_default()
                );
                t.contains(&format!("azurerm_storage_account.{name}."))
            })
            .collect();
        if containers.len() != 1 {
            v.push(format!("layers: {what} has {} containers (one private container per layer)", containers.len()));
        }
        for c in containers {
            if str_attr(body, c, "container_access_type").as_deref() != Some("private") {
                v.push(format!("public-access: the container of {what} is not private"));
            }
        }
        check_tags(&mut v, b, &what, "tags");
    }

    // Role definitions never use wildcards.
    for (name, d) in resources(body, "azurerm_role_definition") {
        for p in sub(d, "permissions") {
            for key in ["actions", "data_actions"] {
                let text = attr(p, key).map(render).unwrap_or_default();
                if text.contains('*') {
                    v.push(format!("wildcard-action: azurerm_role_definition.{name} {key} has a wildcard"));
                }
            }
        }
    }
    let deletes = |role_text: &str| -> bool {
        let def = reference(role_text, "azurerm_role_definition.").map(|(n, _)| n);
        def.and_then(|d| resource(body, "azurerm_role_definition", &d))
            .map(|d| {
                sub(d, "permissions")
                    .iter()
                    .any(|p| attr(p, "data_actions").map(render).unwrap_or_default().contains("/delete"))
            })
            .unwrap_or(role_text.contains("Contributor") || role_text.contains("Owner"))
    };

    // Role assignments: scoped to a container or the private-key secret; the matrix holds.
    let mut private_key_readers = BTreeSet::new();
    for (name, res) in resources(body, "azurerm_role_assignment") {
        for inst in instances(body, res) {
            let role = format!("{} {}", inst.text("role_definition_name"), inst.text("role_definition_id"));
            let role_name = inst.string("role_definition_name").unwrap_or_default();
            if forbidden_role(&role_name) {
                v.push(format!("iam-admin: azurerm_role_assignment.{name}[{}] assigns {role_name}", inst.key));
            }
            let principal = inst.text("principal_id");
            let stage = reference(&principal, "azurerm_user_assigned_identity.")
                .map(|(n, i)| i.unwrap_or(n))
                .unwrap_or_default();
            let scope = inst.text("scope");
            let what = format!("azurerm_role_assignment.{name}[{}]", inst.key);
            if scope.contains("azurerm_key_vault.") {
                if stage != "standard" {
                    v.push(format!("raw-private-key: {what} gives {stage} access to the key vault"));
                } else if !scope.contains("/secrets/") {
                    v.push(format!("least-privilege: {what} scopes the standard identity to the whole key vault"));
                } else {
                    private_key_readers.insert(stage.clone());
                }
                continue;
            }
            if scope.contains("azurerm_storage_account.") {
                if !scope.contains("/containers/") {
                    v.push(format!("least-privilege: {what} is scoped to a whole storage account, not a container"));
                }
                let layer = references(&scope, "azurerm_storage_account.")
                    .first()
                    .and_then(|(n, _)| layer_of.get(n).copied())
                    .unwrap_or("?");
                let writes = deletes(&role) || role.contains("writer") || role.contains("Contributor");
                let ok = match stage.as_str() {
                    "raw" => layer == "raw" && !deletes(&role),
                    "standard" => layer == "raw" && !writes || layer == "standard",
                    "reduce" => layer == "standard" && !writes || layer == "archive",
                    "query" => (layer == "standard" || layer == "archive") && !writes,
                    _ => false,
                };
                if !ok {
                    let rule = if stage == "raw" { "raw-isolation" } else { "least-privilege" };
                    v.push(format!("{rule}: {what} gives {stage} {} on the {layer} container", role.trim()));
                }
            } else if !scope.contains("registry_id") {
                v.push(format!(
                    "least-privilege: {what} has scope {} (container, secret or registry only)",
                    scope.trim()
                ));
            }
        }
    }
    if !private_key_readers.contains("standard") {
        v.push("least-privilege: the standard identity cannot read the private key secret".into());
    }

    // Scheduling: one Container Apps job per stage with a cron or manual trigger.
    let jobs: Vec<&Body> = resources(body, "azurerm_container_app_job").into_iter().map(|(_, j)| j).collect();
    let job_stages: BTreeSet<String> =
        jobs.iter().flat_map(|j| instances(body, j).into_iter().map(|i| i.key)).collect();
    for stage in STAGES {
        if !job_stages.contains(stage) {
            v.push(format!("scheduling: no Container Apps job for the {stage} stage"));
        }
    }
    for j in jobs {
        let has_schedule = j.blocks().any(|b| {
            b.identifier() == "schedule_trigger_config"
                || (b.identifier() == "dynamic"
                    && b.labels().first().map(|l| l.as_str()) == Some("schedule_trigger_config"))
        });
        if !has_schedule {
            v.push("scheduling: a Container Apps job has no schedule_trigger_config".into());
        }
    }

    // The resource group cannot be deleted with resources in it (Azure's force_destroy).
    let guarded = body.blocks().filter(|b| b.identifier() == "provider").any(|p| {
        path(p.body(), &["features", "resource_group"])
            .iter()
            .any(|rg| is_true(body, rg, "prevent_deletion_if_contains_resources"))
    });
    if !guarded {
        v.push("force-destroy: the azurerm provider does not set features.resource_group.prevent_deletion_if_contains_resources".into());
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the clouds

/// Every cloud pins terraform and its provider to a bounded version range and configures a
/// remote backend.
fn versions_violations(body: &Body, provider: &str) -> Vec<String> {
    let mut v = Vec::new();
    let tf = sub(body, "terraform");
    let required_version = tf.iter().filter_map(|t| attr(t, "required_version")).map(render).collect::<String>();
    if !required_version.contains(">=") {
        v.push("versions: no terraform required_version".into());
    }
    let providers =
        tf.iter().flat_map(|t| sub(t, "required_providers")).filter_map(|p| attr(p, provider)).collect::<Vec<_>>();
    match providers.first() {
        Some(Expression::Object(obj)) => {
            let get = |k: &str| obj.iter().find(|(key, _)| key_str(key) == k).map(|(_, e)| render(e));
            if !get("source").unwrap_or_default().contains(&format!("hashicorp/{provider}")) {
                v.push(format!("versions: {provider} has no hashicorp source"));
            }
            let version = get("version").unwrap_or_default();
            if !(version.contains('<') || version.contains("~>")) || !version.contains('>') {
                v.push(format!("versions: {provider} version {version} has no lower and upper bound"));
            }
        }
        _ => v.push(format!("versions: {provider} is not in required_providers")),
    }
    if !tf.iter().any(|t| !sub(t, "backend").is_empty()) {
        v.push("versions: no backend block (state must be remote)".into());
    }
    v
}

/// Every variable is typed and described; the ones named carry validation blocks.
fn variables_violations(body: &Body, validated: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for b in body.blocks().filter(|b| b.identifier() == "variable") {
        let name = b.labels().first().map(|l| l.as_str()).unwrap_or("?");
        for key in ["type", "description"] {
            if attr(b.body(), key).is_none() {
                v.push(format!("variables: variable {name} has no {key}"));
            }
        }
    }
    for name in validated {
        match variable(body, name) {
            None => v.push(format!("variables: no variable {name}")),
            Some(b) if sub(b, "validation").is_empty() => {
                v.push(format!("variables: variable {name} has no validation block"))
            }
            Some(_) => {}
        }
    }
    match variable(body, "force_destroy") {
        Some(b) if matches!(attr(b, "default"), Some(Expression::Bool(false))) => {}
        Some(_) => v.push("force-destroy: variable force_destroy does not default to false".into()),
        None => {}
    }
    v
}

fn tags(violations: &[String]) -> BTreeSet<&str> {
    violations.iter().filter_map(|v| v.split_once(':').map(|(t, _)| t)).collect()
}

fn assert_none(what: &str, violations: Vec<String>) {
    assert!(violations.is_empty(), "{what}: {} violations:\n  {}", violations.len(), violations.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_terraform_file_parses() {
    let files = files_with_ext(&terraform_dir(), &["tf", "tfvars"], true);
    assert!(files.len() >= 20, "expected the terraform/ tree, found {} files", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        if let Err(e) = hcl::parse(&text) {
            panic!("{}: {e}", file.display());
        }
    }
}

#[test]
fn gcp_invariants_hold() {
    let body = load_cloud("gcp");
    assert_none("terraform/gcp", gcp_violations(&body));
    assert_none("terraform/gcp versions", versions_violations(&body, "google"));
    assert_none(
        "terraform/gcp variables",
        variables_violations(
            &body,
            &[
                "project_id",
                "region",
                "name_prefix",
                "soft_delete_days",
                "noncurrent_version_days",
                "coldline_after_days",
                "archive_after_days",
                "schedules",
                "image",
                "public_key_pem",
            ],
        ),
    );
}

#[test]
fn aws_invariants_hold() {
    let body = load_cloud("aws");
    assert_none("terraform/aws", aws_violations(&body));
    assert_none("terraform/aws versions", versions_violations(&body, "aws"));
    assert_none(
        "terraform/aws variables",
        variables_violations(
            &body,
            &[
                "region",
                "name_prefix",
                "noncurrent_version_days",
                "infrequent_access_after_days",
                "glacier_after_days",
                "schedules",
                "subnet_ids",
                "public_key_pem",
            ],
        ),
    );
}

#[test]
fn azure_invariants_hold() {
    let body = load_cloud("azure");
    assert_none("terraform/azure", azure_violations(&body));
    assert_none("terraform/azure versions", versions_violations(&body, "azurerm"));
    assert_none(
        "terraform/azure variables",
        variables_violations(
            &body,
            &[
                "subscription_id",
                "location",
                "name_prefix",
                "soft_delete_days",
                "noncurrent_version_days",
                "cold_after_days",
                "schedules",
                "public_key_pem",
            ],
        ),
    );
}

/// The checks can fail: the deliberately broken configuration trips each rule it breaks.
#[test]
fn broken_configuration_fails_the_invariants() {
    let body = load_broken();
    let cases: [(&str, Vec<String>, &[&str]); 3] = [
        (
            "gcp",
            gcp_violations(&body),
            &[
                "layers",
                "cold-class",
                "lifecycle",
                "multipart",
                "public-access",
                "uniform-access",
                "soft-delete",
                "force-destroy",
                "labels",
                "iam-admin",
                "iam-scope",
                "public-member",
                "raw-private-key",
                "least-privilege",
                "scheduling",
                "bigquery",
            ],
        ),
        (
            "aws",
            aws_violations(&body),
            &[
                "layers",
                "cold-class",
                "lifecycle",
                "multipart",
                "public-access",
                "uniform-access",
                "soft-delete",
                "tls-only",
                "force-destroy",
                "labels",
                "wildcard-action",
                "raw-isolation",
                "scheduling",
            ],
        ),
        (
            "azure",
            azure_violations(&body),
            &[
                "layers",
                "cold-class",
                "lifecycle",
                "public-access",
                "uniform-access",
                "tls-only",
                "soft-delete",
                "least-privilege",
                "scheduling",
                "force-destroy",
            ],
        ),
    ];
    for (cloud, violations, expected) in cases {
        let got = tags(&violations);
        let missing: Vec<&&str> = expected.iter().filter(|t| !got.contains(**t)).collect();
        assert!(
            missing.is_empty(),
            "{cloud} checks missed {missing:?} on terraform/testdata/broken; they found:\n  {}",
            violations.join("\n  ")
        );
    }
    // And the broken directory's own variable defaults force_destroy to true.
    assert!(tags(&variables_violations(&body, &[])).contains("force-destroy"));
}

/// The body of `terraform/<cloud>` with one file's text edited (`from` must occur in it).
fn load_edited(cloud: &str, file: &str, from: &str, to: &str) -> Body {
    let mut structures = Vec::new();
    for f in files_with_ext(&terraform_dir().join(cloud), &["tf"], false) {
        let mut text = std::fs::read_to_string(&f).expect("read");
        if f.file_name().and_then(|n| n.to_str()) == Some(file) {
            assert!(text.contains(from), "terraform/{cloud}/{file} no longer contains {from:?}");
            text = text.replacen(from, to, 1);
        }
        structures.extend(hcl::parse(&text).unwrap_or_else(|e| panic!("{cloud}/{file} edited: {e}")).into_inner());
    }
    Body(structures)
}

/// Single edits to a good configuration are caught, each by the rule it breaks.
#[test]
fn single_regressions_are_caught() {
    let edits: &[(&str, &str, &str, &str, &str)] = &[
        ("gcp", "storage.tf", "storage_class = \"NEARLINE\"", "storage_class = \"STANDARD\"", "cold-class"),
        ("gcp", "storage.tf", "storage_class = \"STANDARD\"", "storage_class = \"NEARLINE\"", "hot-class"),
        ("gcp", "storage.tf", "public_access_prevention    = \"enforced\"", "public_access_prevention    = \"inherited\"", "public-access"),
        ("gcp", "storage.tf", "uniform_bucket_level_access = true", "uniform_bucket_level_access = false", "uniform-access"),
        ("gcp", "storage.tf", "type = \"AbortIncompleteMultipartUpload\"", "type = \"Delete\"", "multipart"),
        ("gcp", "storage.tf", "retention_duration_seconds = var.soft_delete_days * 86400", "retention_duration_seconds = 0", "soft-delete"),
        ("gcp", "storage.tf", "force_destroy = var.force_destroy", "force_destroy = true", "force-destroy"),
        ("gcp", "variables.tf", "type        = bool\n  default     = false", "type        = bool\n  default     = true", "force-destroy"),
        ("gcp", "iam.tf", "role = \"roles/storage.objectViewer\" }", "role = \"roles/storage.admin\" }", "iam-admin"),
        ("gcp", "iam.tf", "stage = \"raw\", bucket = google_storage_bucket.raw.name, role = \"roles/storage.objectViewer\"", "stage = \"raw\", bucket = google_storage_bucket.standard.name, role = \"roles/storage.objectViewer\"", "raw-isolation"),
        ("gcp", "iam.tf", "google_service_account.stage[\"standard\"].email", "google_service_account.stage[\"raw\"].email", "raw-private-key"),
        ("gcp", "iam.tf", "role     = \"roles/run.invoker\"", "role     = \"roles/run.developer\"", "scheduler"),
        ("gcp", "bigquery.tf", "mode                     = \"AUTO\"", "mode                     = \"NONE\"", "bigquery"),
        ("aws", "storage.tf", "storage_class = \"STANDARD_IA\"", "storage_class = \"ONEZONE_IA\"", "cold-class"),
        ("aws", "storage.tf", "    raw      = aws_s3_bucket.raw\n", "", "public-access"),
        ("aws", "storage.tf", "abort_incomplete_multipart_upload {\n      days_after_initiation = 1\n    }", "", "multipart"),
        ("aws", "storage.tf", "values   = [\"false\"]", "values   = [\"true\"]", "tls-only"),
        ("aws", "iam.tf", "actions   = [\"s3:GetObject\", \"s3:PutObject\", \"s3:AbortMultipartUpload\"]", "actions   = [\"s3:*\"]", "wildcard-action"),
        ("aws", "iam.tf", "actions   = [\"s3:GetObject\", \"s3:PutObject\", \"s3:AbortMultipartUpload\"]", "actions   = [\"s3:GetObject\", \"s3:PutObject\", \"s3:DeleteObject\"]", "raw-isolation"),
        ("aws", "iam.tf", "resources = [\"${aws_s3_bucket.raw.arn}/*\"]\n  }\n  statement {\n    sid       = \"UseLakeKeyThroughS3\"", "resources = [\"${aws_s3_bucket.standard.arn}/*\"]\n  }\n  statement {\n    sid       = \"UseLakeKeyThroughS3\"", "raw-isolation"),
        ("aws", "iam.tf", "role   = aws_iam_role.execution[\"standard\"].id", "role   = aws_iam_role.execution[\"raw\"].id", "raw-private-key"),
        ("aws", "iam.tf", "actions   = [\"ecs:RunTask\"]", "actions   = [\"ecs:RunTask\", \"ecs:StopTask\"]", "scheduler"),
        ("azure", "storage.tf", "access_tier              = \"Cool\"", "access_tier              = \"Hot\"", "cold-class"),
        ("azure", "storage.tf", "min_tls_version                   = \"TLS1_2\"", "min_tls_version                   = \"TLS1_0\"", "tls-only"),
        ("azure", "storage.tf", "shared_access_key_enabled         = false", "shared_access_key_enabled         = true", "uniform-access"),
        ("azure", "storage.tf", "allow_nested_items_to_be_public   = false", "allow_nested_items_to_be_public   = true", "public-access"),
        ("azure", "storage.tf", "resource \"azurerm_storage_management_policy\" \"raw\" {\n  storage_account_id = azurerm_storage_account.raw.id", "resource \"azurerm_storage_management_policy\" \"raw\" {\n  storage_account_id = azurerm_storage_account.standard.id", "lifecycle"),
        ("azure", "iam.tf", "raw-writes-raw           = { stage = \"raw\", layer = \"raw\"", "raw-writes-raw           = { stage = \"raw\", layer = \"archive\"", "raw-isolation"),
        ("azure", "iam.tf", "principal_id         = azurerm_user_assigned_identity.stage[\"standard\"].principal_id", "principal_id         = azurerm_user_assigned_identity.stage[\"raw\"].principal_id", "raw-private-key"),
        ("azure", "iam.tf", "\"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action\",\n    ]", "\"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*\",\n    ]", "wildcard-action"),
    ];
    for (cloud, file, from, to, rule) in edits {
        let body = load_edited(cloud, file, from, to);
        let violations = match *cloud {
            "gcp" => gcp_violations(&body),
            "aws" => aws_violations(&body),
            _ => azure_violations(&body),
        };
        let violations = [violations, variables_violations(&body, &[])].concat();
        assert!(
            tags(&violations).contains(rule),
            "{cloud}/{file}: editing {from:?} -> {to:?} was not caught as {rule}; found {violations:?}"
        );
    }
}
