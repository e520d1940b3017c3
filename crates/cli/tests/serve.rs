//! `cointrail serve` end to end: a real server process on 127.0.0.1, real HTTP requests,
//! real keys from `cointrail keys`, and changes to the data directory while it serves.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

mod support;
use support::*;

fn demo_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    (d, dir)
}

/// The first stolen outpoint of heist 0 and the victim's address that held it.
fn stolen(dir: &Path) -> (String, String) {
    let t = std::fs::read_to_string(dir.join("demo-chain/truth/stolen_outpoints.tsv")).unwrap();
    let f: Vec<&str> = t.lines().nth(1).unwrap().split('\t').collect();
    (f[1].to_string(), f[3].to_string())
}

/// The thief's first output (TXID:0 of the drain transaction) and its address.
fn loot(dir: &Path) -> (String, String) {
    let t = std::fs::read_to_string(dir.join("demo-chain/truth/stolen_outpoints.tsv")).unwrap();
    let f: Vec<&str> = t.lines().nth(1).unwrap().split('\t').collect();
    let tx: Value = serde_json::from_str(&cli(dir, &["tx", f[4], "--json"])).unwrap();
    (
        format!("{}:0", f[4]),
        tx["outputs"][0]["address"].as_str().unwrap().to_string(),
    )
}

/// An address that appears on chain but carries no attribution (for label tests).
fn unlabelled_address(dir: &Path) -> String {
    let attributed = std::fs::read_to_string(dir.join("attribution.tsv")).unwrap();
    let t = std::fs::read_to_string(dir.join("demo-chain/truth/addresses.tsv")).unwrap();
    t.lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().to_string())
        .find(|a| !attributed.contains(a.as_str()))
        .unwrap()
}

#[test]
fn screening_api_end_to_end() {
    let (_d, dir) = demo_dir();
    let read = cli(&dir, &["keys", "create", "exchange-a"])
        .trim()
        .to_string();
    let write = cli(&dir, &["keys", "create", "analyst", "--scope", "write"])
        .trim()
        .to_string();
    let slow = cli(
        &dir,
        &["keys", "create", "slow", "--rate", "1", "--burst", "2"],
    )
    .trim()
    .to_string();
    // Keys are stored hashed: the store never holds the key text.
    let store = std::fs::read(dir.join("keys.redb")).unwrap();
    assert!(!store.windows(read.len()).any(|w| w == read.as_bytes()));
    let listed: Value = serde_json::from_str(&cli(&dir, &["keys", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);

    let srv = Server::start(&dir, &[]);
    let a = srv.addr.clone();

    // Health and metrics need no key; everything under /v1 does.
    let h = http(&a, "GET", "/health", None, None);
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    let (outpoint, victim_addr) = stolen(&dir);
    let (loot_outpoint, thief_addr) = loot(&dir);
    let path = format!("/v1/screen/address/{thief_addr}");
    let r = http(&a, "GET", &path, None, None);
    assert_eq!(r.status, 401);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("keys create"));
    let r = get(&a, &path, "ct_00000000_00000000000000000000000000000000");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("unauthorized"))
    );

    // The API answers exactly what `cointrail screen --json` prints.
    let api = get(&a, &path, &read);
    assert_eq!(api.status, 200);
    let mut api = api.json();
    let mut local: Value =
        serde_json::from_str(&cli(&dir, &["screen", &thief_addr, "--json"])).unwrap();
    assert_eq!(api["provenance"]["snapshot"], 1);
    api["provenance"]
        .as_object_mut()
        .unwrap()
        .remove("snapshot");
    local["provenance"]
        .as_object_mut()
        .unwrap()
        .remove("snapshot");
    assert_eq!(api, local);
    assert_eq!(api["risk"], "severe");

    // The victim is not exposed to its own theft: the coins at its addresses are its own.
    let v = get(&a, &format!("/v1/screen/address/{victim_addr}"), &read).json();
    assert_ne!(v["risk"], "severe", "{v}");
    assert!(!v["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["direction"] == "received" && e["category"] == "stolen_funds:sim-heist-0"));

    // The thief's output, screened as a deposit: the theft case counts exactly.
    let (ltxid, lvout) = loot_outpoint.split_once(':').unwrap();
    let r = get(&a, &format!("/v1/screen/output/{ltxid}/{lvout}"), &read).json();
    assert_eq!(r["risk"], "severe", "{r}");
    assert!(r["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["category"] == "stolen_funds:sim-heist-0"));
    let (txid, vout) = outpoint.split_once(':').unwrap();
    let r = get(
        &a,
        &format!("/v1/screen/transaction/{txid}?max_hops=1"),
        &read,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["parameters"]["max_hops"], 1);

    // Bad input: 4xx with a JSON error naming the field.
    let bad = [
        (
            "/v1/screen/address/1BoatSLRHtKNngkdXEeobR76b53LETtpyX",
            400,
            "address",
        ), // checksum
        (
            "/v1/screen/address/bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            400,
            "address",
        ), // mainnet on regtest
        ("/v1/screen/transaction/xyz", 400, "txid"),
        (
            &format!("/v1/screen/transaction/{}", "ab".repeat(32)),
            404,
            "txid",
        ),
        (&format!("/v1/screen/output/{txid}/999999"), 404, "vout"),
        (&format!("/v1/screen/output/{txid}/-1"), 400, "path"),
        (&format!("{path}?max_hops=99"), 400, "max_hops"),
        (&format!("{path}?max_hops=x"), 400, "query"),
        ("/v1/entities/4294967295000", 404, "id"),
    ];
    for (p, status, field) in bad {
        let r = get(&a, p, &read);
        assert_eq!(
            r.status,
            status,
            "{p}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let j = r.json();
        assert_eq!(j["field"], field, "{p}: {j}");
        assert!(!j["message"].as_str().unwrap().is_empty());
    }
    let r = http(
        &a,
        "POST",
        "/v1/screen/batch",
        Some(&read),
        Some("{\"subjects\": [\"x\""),
    );
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("body")));
    let many: Vec<String> = (0..1001).map(|_| thief_addr.clone()).collect();
    let r = http(
        &a,
        "POST",
        "/v1/screen/batch",
        Some(&read),
        Some(&json!({ "subjects": many }).to_string()),
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("subjects"))
    );
    let r = get(&a, "/v1/nothing", &read);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("not_found"))
    );

    // A batch mixes kinds; a bad subject fails alone.
    let r = http(
        &a,
        "POST",
        "/v1/screen/batch",
        Some(&read),
        Some(&json!({ "subjects": [thief_addr, outpoint, "nonsense"] }).to_string()),
    );
    assert_eq!(r.status, 200);
    let res = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(res.len(), 3);
    assert_eq!(res[0]["screening"]["risk"], "severe");
    assert_eq!(
        res[1]["screening"]["subject"]["vout"],
        vout.parse::<u64>().unwrap()
    );
    assert_eq!(res[2]["error"]["field"], "subjects[2]");

    // Chain views.
    let v = get(&a, &format!("/v1/addresses/{victim_addr}?limit=2"), &read).json();
    assert_eq!(v["address"]["outputs"].as_array().unwrap().len(), 2);
    let ent = v["entity"].as_u64().expect("the demo builds a clustering");
    let e = get(&a, &format!("/v1/entities/{ent}"), &read).json();
    assert!(e["addresses"]
        .as_array()
        .unwrap()
        .contains(&json!(victim_addr)));
    let t = get(&a, &format!("/v1/transactions/{txid}"), &read).json();
    assert_eq!(t["transaction"]["txid"], txid);

    // Scopes: a read key cannot write.
    let fresh = unlabelled_address(&dir);
    let label = json!({"address": fresh, "label": "Garantex", "category": "sanctions"}).to_string();
    let r = http(&a, "POST", "/v1/labels", Some(&read), Some(&label));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("forbidden"))
    );
    let before = get(&a, &format!("/v1/screen/address/{fresh}"), &read).json();
    assert!(!before["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "ownership"));
    // A write key adds the label; the next snapshot screens the address as sanctioned.
    let r = http(&a, "POST", "/v1/labels", Some(&write), Some(&label));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    wait_for("the label reaches screening", || {
        let s = get(&a, &format!("/v1/screen/address/{fresh}"), &read).json();
        s["provenance"]["snapshot"].as_u64().unwrap() > 1 && s["risk"] == "severe"
    });
    let l = get(&a, &format!("/v1/labels?address={fresh}"), &read).json();
    assert_eq!(l["labels"][0]["label"], "Garantex");
    let r = http(
        &a,
        "POST",
        "/v1/labels",
        Some(&write),
        Some(&json!({"address": "1BoatSLRHtKNngkdXEeobR76b53LETtpyX", "label": "x"}).to_string()),
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("address"))
    );

    // Cases: create, read, conflict, delete.
    let c = json!({"name": "api-case", "sources": [outpoint]}).to_string();
    let r = http(&a, "POST", "/v1/cases", Some(&write), Some(&c));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = http(&a, "POST", "/v1/cases", Some(&write), Some(&c));
    assert_eq!(r.status, 409);
    let g = get(&a, "/v1/cases/api-case", &read).json();
    assert_eq!(g["resolved_outputs"], 1);
    assert!(get(&a, "/v1/cases", &read).json()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "api-case"));
    assert_eq!(
        http(&a, "DELETE", "/v1/cases/api-case", Some(&write), None).status,
        204
    );
    assert_eq!(get(&a, "/v1/cases/api-case", &read).status, 404);

    // Rate limits: 2 at once, then 429 with a Retry-After.
    let codes: Vec<u16> = (0..4).map(|_| get(&a, &path, &slow).status).collect();
    assert_eq!(&codes[..2], &[200, 200]);
    let r = get(&a, &path, &slow);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.json()["error"], "rate_limited");

    // Revoking takes effect without a restart.
    cli(&dir, &["keys", "revoke", "exchange-a"]);
    wait_for("the revoked key is refused", || {
        get(&a, &path, &read).status == 401
    });

    // The OpenAPI document and the metrics reflect what happened.
    let doc = http(&a, "GET", "/openapi.json", None, None).json();
    assert!(doc["paths"]["/v1/screen/address/{address}"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    let m = String::from_utf8(http(&a, "GET", "/metrics", None, None).body).unwrap();
    assert!(
        m.contains("route=\"/v1/screen/address/{address}\",status=\"200\""),
        "{m}"
    );
    assert!(m.contains("status=\"429\""));

    // SIGTERM: a graceful stop, exit status 0.
    assert!(srv.stop().success());
}

/// `cointrail ingest` of the real mainnet blocks at `heights`.
fn ingest_mainnet(dir: &Path, heights: std::ops::RangeInclusive<u32>) {
    let files: Vec<String> = heights.map(mainnet_block).collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(|s| s.as_str()));
    cli(dir, &args);
}

fn mainnet_block(h: u32) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../testdata/btc/mainnet/0{h}.bin"))
        .display()
        .to_string()
}

/// New blocks arrive while it serves: the next snapshot has them, without a restart.
#[test]
fn new_blocks_are_served_without_restart() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    ingest_mainnet(&dir, 831328..=831331);
    let srv = Server::start(&dir, &["--no-keys"]);
    let a = srv.addr.clone();
    assert_eq!(
        http(&a, "GET", "/health", None, None).json()["index_tip_height"],
        831331
    );
    // The coinbase of block 831335, not yet indexed.
    let block: bitcoin::Block =
        bitcoin::consensus::deserialize(&std::fs::read(mainnet_block(831335)).unwrap()).unwrap();
    let cb = block.txdata[0].compute_txid().to_string();
    let p = format!("/v1/screen/transaction/{cb}");
    assert_eq!(http(&a, "GET", &p, None, None).status, 404);
    ingest_mainnet(&dir, 831332..=831335);
    wait_for("the new tip is served", || {
        http(&a, "GET", "/health", None, None).json()["index_tip_height"] == 831335
    });
    let r = http(&a, "GET", &p, None, None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["received"]["coinbase_sats"],
        block.txdata[0]
            .output
            .iter()
            .map(|o| o.value.to_sat())
            .sum::<u64>()
    );
    assert!(srv.stop().success());
}

#[test]
fn no_keys_only_on_loopback_and_no_index_is_explained() {
    let d = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("--data-dir")
        .arg(d.path())
        .args(["serve", "--bind", "0.0.0.0:0", "--no-keys"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    let out = bin()
        .arg("--data-dir")
        .arg(d.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no index"));
}

/// A clustering built again while it serves (here with change rules) is picked up
/// without a restart, once its save completes (the server watches the save's stamp).
#[test]
fn a_clustering_saved_while_serving_is_picked_up() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    ingest_mainnet(&dir, 831328..=831331);
    cli(&dir, &["cluster", "build"]);
    let srv = Server::start(&dir, &["--no-keys"]);
    let a = srv.addr.clone();
    let block: bitcoin::Block =
        bitcoin::consensus::deserialize(&std::fs::read(mainnet_block(831328)).unwrap()).unwrap();
    let p = format!("/v1/screen/transaction/{}", block.txdata[0].compute_txid());
    let clustering = || {
        http(&a, "GET", &p, None, None).json()["provenance"]["attribution"]["clustering"].clone()
    };
    assert_eq!(clustering()["covered_txs"], 10_718);
    assert_eq!(clustering()["change_rules"], Value::Null);
    cli(
        &dir,
        &[
            "cluster",
            "build",
            "--change",
            "default",
            "--change-delay",
            "2",
        ],
    );
    wait_for("the new clustering is served", || {
        clustering()["change_rules"]["name"] == "default"
    });
    assert!(srv.stop().success());
}

/// `soft=true` on the Bitcoin screening routes (issue 19): a deposit at a service that the
/// demo theft's soft hops reach gets a `soft_exposure` field equal to
/// `cointrail --json screen X --soft`'s, and everything else is the answer without it; no
/// parameter (or `soft=false`) answers the same bytes with no such field; a bad value is a
/// 400 naming the parameter.
#[test]
fn soft_exposure_over_the_api_is_the_clis() {
    let (_d, dir) = demo_dir();
    let key = cli(&dir, &["keys", "create", "soft"]).trim().to_string();
    let r = json(&dir, &["trace", "sim-heist-0", "--soft-hops"]);
    let row = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["soft_sats"].as_u64().unwrap() > 0
                && o["tainted_sats"] == 0
                && o["stop_reason"] == "service:exchange"
        })
        .expect("a soft-only deposit at an exchange on the demo")
        .clone();
    let txid = row["txid"].as_str().unwrap().to_string();
    let vout = row["vout"].as_u64().unwrap();
    let op = format!("{txid}:{vout}");
    let tx = json(&dir, &["tx", &txid]);
    let addr = tx["outputs"][vout as usize]["address"]
        .as_str()
        .unwrap()
        .to_string();
    let srv = Server::start(&dir, &[]);
    let a = srv.addr.clone();
    for (path, subject) in [
        (format!("/v1/screen/output/{txid}/{vout}"), op.clone()),
        (format!("/v1/screen/address/{addr}"), addr.clone()),
        (format!("/v1/screen/transaction/{txid}"), txid.clone()),
    ] {
        let plain = get(&a, &path, &key);
        assert_eq!(plain.status, 200, "{path}");
        assert!(plain.json().get("soft_exposure").is_none(), "{path}");
        // soft=false is the same bytes as no parameter.
        let off = get(&a, &format!("{path}?soft=false"), &key);
        assert_eq!(off.status, 200);
        assert_eq!(off.body, plain.body, "{path}?soft=false");
        let soft = get(&a, &format!("{path}?soft=true"), &key);
        assert_eq!(soft.status, 200, "{path}?soft=true");
        let mut soft = soft.json();
        let se = soft
            .as_object_mut()
            .unwrap()
            .remove("soft_exposure")
            .unwrap_or_else(|| panic!("{path}?soft=true: no soft_exposure"));
        assert_eq!(
            soft,
            plain.json(),
            "{path}: the rest changed with soft=true"
        );
        let local = json(&dir, &["screen", &subject, "--soft"]);
        assert_eq!(se, local["soft_exposure"], "{path}");
        // The subject is reached by a soft hop: the field is not trivially empty.
        let rows = se.as_array().unwrap();
        assert!(
            rows.iter()
                .any(|x| x["case"] == "sim-heist-0" && x["output"] == op.as_str()),
            "{path}: {se}"
        );
        assert_eq!(soft["risk"], local["risk"]);
        assert_eq!(soft["fired_rules"], local["fired_rules"]);
        // A bad value is a JSON 400 naming the parameter.
        let bad = get(&a, &format!("{path}?soft=maybe"), &key);
        assert_eq!(bad.status, 400, "{path}?soft=maybe");
        let b = bad.json();
        assert_eq!(b["error"], "invalid_input");
        assert_eq!(b["field"], "soft");
        assert!(b["message"].as_str().unwrap().contains("maybe"), "{b}");
    }
    // Soft exposure says where an output's coins came from: not with direction=out.
    let r = get(
        &a,
        &format!("/v1/screen/output/{txid}/{vout}?direction=out&soft=true"),
        &key,
    );
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("soft")));
    let r = get(
        &a,
        &format!("/v1/screen/output/{txid}/{vout}?direction=out&soft=false"),
        &key,
    );
    assert_eq!(r.status, 200);
    // The OpenAPI document names the parameter and the field.
    let doc = http(&a, "GET", "/openapi.json", None, None).json();
    let s = doc.to_string();
    assert!(
        s.contains("\"soft_exposure\""),
        "no soft_exposure in the OpenAPI"
    );
    let params = doc["paths"]["/v1/screen/address/{address}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "soft"));
}
