//! Several users may share one PC (a morning and an evening shift on the same machine): each assigned user
//! gets a ticket and a tunnel to it, at the same time; a user not assigned to it gets neither.

use crate::common::*;
use homedesk_relay::http;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn two_users_assigned_to_one_workstation_both_reach_it_and_an_unassigned_user_does_not() {
    let relay = TestRelay::start().await;
    let (addr, accepted) = echo_peer().await;
    let shared = relay.user_with_workstation("morning", "pc-front-desk", addr).await;
    relay.add_user("evening").await;
    relay.assign("evening", "pc-front-desk").await;
    relay.add_user("night").await;

    let morning = relay.login("morning").await;
    let evening = relay.login("evening").await;
    let mut morning_ws = relay.tunnel(&relay.ticket(&morning, None).await).await;
    let mut evening_ws = relay.tunnel(&relay.ticket(&evening, Some(shared)).await).await;
    echo_roundtrip(&mut morning_ws, b"morning shift").await;
    echo_roundtrip(&mut evening_ws, b"evening shift, a longer message").await;
    echo_roundtrip(&mut morning_ws, b"still here").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "one connection to the PC per user");
    let mut users: Vec<String> = relay.server().pipes().snapshot().into_iter().map(|p| p.username).collect();
    users.sort();
    assert_eq!(users, ["evening", "morning"]);

    let night = relay.login("night").await;
    let refused = relay.ticket_response(&night, None).await;
    assert_eq!((refused.status, refused.error()), (403, http::NO_WORKSTATION.to_owned()));
    // Naming the shared PC does not help: the user has no workstation at all.
    let refused = relay.ticket_response(&night, Some(shared)).await;
    assert_eq!((refused.status, refused.error()), (403, http::NO_WORKSTATION.to_owned()));
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "nothing dialled for the unassigned user");
}
