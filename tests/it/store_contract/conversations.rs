//! The store's contract: conversations and their messages.

use super::*;

cases! {
    async fn conversations_and_messages(store, location) {
        insert(&store, &user("ann", Role::User, AccountState::Active, 1)).await;
        insert(&store, &user("ben", Role::User, AccountState::Active, 1)).await;
        let conv = |id: &str, user: &str, at: i64| ConversationRow {
            id: id.into(),
            user_id: format!("id-{user}"),
            title: format!("title {id}"),
            collection_ids: "[\"c1\"]".into(),
            document_ids: "[]".into(),
            created_at: at,
            updated_at: at,
        };
        store.insert_conversation(&conv("k1", "ann", 10)).await.unwrap();
        store.insert_conversation(&conv("k2", "ann", 20)).await.unwrap();
        store.insert_conversation(&conv("k3", "ben", 30)).await.unwrap();
        assert!(store.insert_conversation(&conv("k1", "ben", 40)).await.is_err());
        let ids = |rows: Vec<ConversationRow>| rows.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(store.conversations_of("id-ann").await.unwrap()), ["k2", "k1"]);
        // A message brings its conversation to the top.
        let m1 = store.insert_message("k1", "user", "hello?", None, "[]", 50).await.unwrap();
        let m2 = store
            .insert_message("k1", "assistant", "hi", Some("extractive"), "[{\"n\":1}]", 51)
            .await
            .unwrap();
        assert!(m2 > m1);
        assert!(store.insert_message("k1", "robot", "x", None, "[]", 52).await.is_err());
        assert_eq!(ids(store.conversations_of("id-ann").await.unwrap()), ["k1", "k2"]);
        let msgs = store.messages("k1").await.unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].id, msgs[0].role.as_str(), msgs[0].content.as_str(), msgs[0].mode.clone(), msgs[0].created_at), (m1, "user", "hello?", None, 50));
        assert_eq!((msgs[1].mode.as_deref(), msgs[1].citations.as_str()), (Some("extractive"), "[{\"n\":1}]"));
        // Only the owner sees or deletes it.
        let k1 = store.conversation("k1", "id-ann").await.unwrap().unwrap();
        assert_eq!((k1.title.as_str(), k1.collection_ids.as_str(), k1.created_at, k1.updated_at), ("title k1", "[\"c1\"]", 10, 51));
        assert!(store.conversation("k1", "id-ben").await.unwrap().is_none());
        store.set_conversation_title("k1", "renamed").await.unwrap();
        assert_eq!(store.conversation("k1", "id-ann").await.unwrap().unwrap().title, "renamed");
        // Renaming and rescoping: the owner's only; an absent field is kept.
        assert!(!store.update_conversation("k1", "id-ben", Some("x"), None, None).await.unwrap());
        assert!(store.update_conversation("k1", "id-ann", None, Some("[]"), Some("[\"d1\"]")).await.unwrap());
        let k1 = store.conversation("k1", "id-ann").await.unwrap().unwrap();
        assert_eq!((k1.title.as_str(), k1.collection_ids.as_str(), k1.document_ids.as_str()), ("renamed", "[]", "[\"d1\"]"));
        // A vote on an answer, by its owner, replaced by the next; never on a question.
        assert!(store.set_feedback("k1", "id-ann", m2, Some("up")).await.unwrap());
        assert!(store.set_feedback("k1", "id-ann", m2, Some("down")).await.unwrap());
        assert!(!store.set_feedback("k1", "id-ben", m2, Some("up")).await.unwrap());
        assert!(!store.set_feedback("k1", "id-ann", m1, Some("up")).await.unwrap());
        assert!(!store.set_feedback("k2", "id-ann", m2, Some("up")).await.unwrap());
        assert!(store.set_feedback("k1", "id-ann", m2, Some("sideways")).await.is_err());
        let msgs = store.messages("k1").await.unwrap();
        assert_eq!((msgs[0].feedback.as_deref(), msgs[1].feedback.as_deref()), (None, Some("down")));
        assert!(!store.delete_conversation("k1", "id-ben").await.unwrap());
        assert!(store.delete_conversation("k1", "id-ann").await.unwrap());
        assert!(store.conversation("k1", "id-ann").await.unwrap().is_none());
        assert!(store.messages("k1").await.unwrap().is_empty());
        assert!(!store.delete_conversation("k1", "id-ann").await.unwrap());
    }
}
