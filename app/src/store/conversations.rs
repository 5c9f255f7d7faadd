//! Queries for conversations and their messages.

use super::dispatch::{on_pool, BeginWrite};
use super::Store;

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub collection_ids: String,
    /// JSON array of document ids; `[]`: the collections decide.
    pub document_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub mode: Option<String>,
    pub citations: String,
    /// `up`, `down` or none: the asker's vote on an answer.
    pub feedback: Option<String>,
    pub created_at: i64,
}

impl Store {
    pub async fn insert_conversation(&self, c: &ConversationRow) -> Result<()> {
        let sql = "INSERT INTO conversations (id, user_id, title, collection_ids, document_ids, \
                   created_at, updated_at) VALUES ($1, $2, $3, $4, $6, $5, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(&c.title)
            .bind(&c.collection_ids)
            .bind(c.created_at)
            .bind(&c.document_ids)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn conversations_of(&self, user_id: &str) -> Result<Vec<ConversationRow>> {
        let sql =
            "SELECT id, user_id, title, collection_ids, document_ids, created_at, updated_at \
                   FROM conversations WHERE user_id = $1 ORDER BY updated_at DESC";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)
    }

    /// The conversation, only if it belongs to `user_id`.
    pub async fn conversation(&self, id: &str, user_id: &str) -> Result<Option<ConversationRow>> {
        let sql =
            "SELECT id, user_id, title, collection_ids, document_ids, created_at, updated_at \
                   FROM conversations WHERE id = $1 AND user_id = $2";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await)
    }

    pub async fn set_conversation_title(&self, id: &str, title: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE conversations SET title = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(title)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Renames a conversation and/or changes what it searches; false when it is not `user_id`'s.
    pub async fn update_conversation(
        &self,
        id: &str,
        user_id: &str,
        title: Option<&str>,
        collection_ids: Option<&str>,
        document_ids: Option<&str>,
    ) -> Result<bool> {
        let sql = "UPDATE conversations SET title = COALESCE($3, title), \
                   collection_ids = COALESCE($4, collection_ids), \
                   document_ids = COALESCE($5, document_ids) WHERE id = $1 AND user_id = $2";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .bind(title)
            .bind(collection_ids)
            .bind(document_ids)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Records `user_id`'s vote (`up`, `down`, or none) on an answer in their conversation;
    /// false when there is no such answer of theirs.
    pub async fn set_feedback(
        &self,
        conversation_id: &str,
        user_id: &str,
        message_id: i64,
        vote: Option<&str>,
    ) -> Result<bool> {
        let sql = "UPDATE messages SET feedback = $4 WHERE id = $3 AND role = 'assistant' \
                   AND conversation_id = $1 AND conversation_id IN \
                   (SELECT id FROM conversations WHERE id = $1 AND user_id = $2)";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(conversation_id)
            .bind(user_id)
            .bind(message_id)
            .bind(vote)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn delete_conversation(&self, id: &str, user_id: &str) -> Result<bool> {
        let sql = "DELETE FROM conversations WHERE id = $1 AND user_id = $2";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<MessageRow>> {
        let sql = "SELECT id, role, content, mode, citations, feedback, created_at FROM messages \
                   WHERE conversation_id = $1 ORDER BY id";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(conversation_id)
            .fetch_all(pool)
            .await)
    }

    pub async fn insert_message(
        &self,
        conversation_id: &str,
        role: &str,
        content: &str,
        mode: Option<&str>,
        citations: &str,
        now: i64,
    ) -> Result<i64> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO messages (conversation_id, role, content, mode, citations, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(conversation_id)
            .bind(role)
            .bind(content)
            .bind(mode)
            .bind(citations)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1")
                .bind(conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(id)
        })
    }
}
