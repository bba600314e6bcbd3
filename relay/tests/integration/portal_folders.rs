//! The portal page's upload and download folders: folders inside the browser's drive ("Browser" in
//! the session), checked like the client checks drive paths; anything else is a clear 400 (console) or
//! a failed command (CLI), and nothing is saved.

use crate::portal::{designer_relay, get, web_root};
use serde_json::json;

const PAGE: &str = "/api/admin/portal/pages/team";

fn folders(upload: &str, download: &str) -> String {
    json!({ "design": {}, "preferences": { "upload_path": upload, "download_path": download } }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_must_be_inside_the_browser_drive() {
    let web = web_root();
    let (relay, admin) = designer_relay(&web).await;

    let saved = relay.post(PAGE, Some(&admin), &folders("Team/In", "Outbox")).await;
    assert_eq!(saved.status, 200, "{}", saved.text());
    let page = get(&relay, PAGE, Some(&admin)).await.json();
    assert_eq!(page["preferences"]["upload_path"], "Team/In", "{page}");
    assert_eq!(page["preferences"]["download_path"], "Outbox", "{page}");

    for (bad, reason) in [
        ("C:\\Uploads", "separator or a colon"),
        ("/home/rdpuser/in", "starts with a separator"),
        ("\\\\server\\share", "starts with a separator"),
        ("../../etc", "\"..\""),
        ("Team/../x", "\"..\""),
        ("Team/CON", "reserved device name"),
        ("In?", "reserved character"),
        ("Inbox.", "ends with a dot"),
    ] {
        for (upload, download, which) in [(bad, "", "upload"), ("", bad, "download")] {
            let response = relay.post(PAGE, Some(&admin), &folders(upload, download)).await;
            assert_eq!(response.status, 400, "{bad:?} as {which} folder: {}", response.text());
            let error = response.error();
            assert!(
                error.starts_with(&format!("The {which} folder")) && error.contains("not a folder in the Browser drive"),
                "{bad:?}: {error}"
            );
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
    }
    // Nothing of the refused saves was kept.
    let page = get(&relay, PAGE, Some(&admin)).await.json();
    assert_eq!(page["preferences"]["upload_path"], "Team/In", "{page}");
    assert_eq!(page["preferences"]["download_path"], "Outbox", "{page}");

    // The CLI applies the same rule.
    let out = relay.cli(&["portal", "page", "set", "team", "--upload-path", "C:\\Uploads"]);
    assert!(!out.status.success(), "the CLI accepted C:\\Uploads");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a folder in the Browser drive"), "{stderr}");
    let out = relay.cli(&["portal", "page", "set", "team", "--upload-path", "Inbox", "--download-path", ""]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(relay.cli(&["portal", "page", "publish", "team"]).status.success());
    let served = get(&relay, "/api/portal?page=team", None).await.json();
    assert_eq!(served["preferences"]["upload_path"], "Inbox", "{served}");
    assert_eq!(served["preferences"]["download_path"], "", "empty: the client's default (Downloads)");
}
