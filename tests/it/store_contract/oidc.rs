//! The store's contract: identities from OpenID providers and the sign-ins under way.

use super::*;
use berth::store::{Linked, NewIdentity, OidcFlowRow};

fn identity<'a>(issuer: &'a str, subject: &'a str) -> NewIdentity<'a> {
    NewIdentity {
        issuer,
        subject,
        provider: "corp",
        email: Some("a@example.com"),
        now: 100,
    }
}

cases! {
    async fn an_identity_links_one_new_account_or_nothing(store, location) {
        let alice = user("alice", Role::User, AccountState::Pending, 1);
        let corp = identity("https://id.example.com", "sub-1");
        assert_eq!(store.insert_user_with_identity(&alice, &corp).await.unwrap(), Linked::Created);
        let found = store.user_by_identity("https://id.example.com", "sub-1").await.unwrap();
        assert_eq!(found.unwrap().username, "alice");
        // The same subject at another issuer is another person.
        assert!(store.user_by_identity("https://other.example.com", "sub-1").await.unwrap().is_none());

        // A taken name writes nothing, not even the link.
        let mut again = user("alice", Role::User, AccountState::Pending, 2);
        again.id = "id-alice-2".into();
        let other = identity("https://id.example.com", "sub-2");
        assert_eq!(store.insert_user_with_identity(&again, &other).await.unwrap(), Linked::NameTaken);
        assert!(store.user_by_identity("https://id.example.com", "sub-2").await.unwrap().is_none());

        // A linked identity writes nothing, not even the account.
        let bob = user("bob", Role::User, AccountState::Pending, 3);
        assert_eq!(store.insert_user_with_identity(&bob, &corp).await.unwrap(), Linked::IdentityTaken);
        assert!(store.user_by_name("bob").await.unwrap().is_none());
        store.touch_identity("https://id.example.com", "sub-1", 200).await.unwrap();
    }

    async fn a_flow_is_taken_once_and_old_ones_are_forgotten(store, location) {
        let flow = |hash: &str, at: i64| OidcFlowRow {
            state_hash: hash.into(),
            provider: "corp".into(),
            browser_hash: "b".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            created_at: at,
        };
        store.insert_oidc_flow(&flow("s1", 1_000)).await.unwrap();
        store.insert_oidc_flow(&flow("s2", 5_000)).await.unwrap();
        let taken = store.take_oidc_flow("s1").await.unwrap().unwrap();
        assert_eq!((taken.nonce.as_str(), taken.pkce_verifier.as_str(), taken.created_at), ("n", "v", 1_000));
        assert!(store.take_oidc_flow("s1").await.unwrap().is_none(), "once");
        store.insert_oidc_flow(&flow("s3", 1_000)).await.unwrap();
        assert_eq!(store.delete_oidc_flows_before(2_000).await.unwrap(), 1);
        assert!(store.take_oidc_flow("s3").await.unwrap().is_none());
        assert!(store.take_oidc_flow("s2").await.unwrap().is_some());
    }

    async fn a_session_remembers_its_provider(store, location) {
        insert(&store, &user("erin", Role::User, AccountState::Active, 1)).await;
        store.insert_session("h1", "id-erin", "c", 1, 100, None, None).await.unwrap();
        assert_eq!(store.session_provider("h1").await.unwrap(), None);
        store.set_session_provider("h1", "corp").await.unwrap();
        assert_eq!(store.session_provider("h1").await.unwrap().as_deref(), Some("corp"));
        assert_eq!(store.session_provider("nothing").await.unwrap(), None);
    }
}
