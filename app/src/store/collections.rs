//! Queries for collections and their members.

use super::dispatch::on_pool;
use super::Store;

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CollectionRow {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub shared: i64,
    /// Members may delete any document, not only their own uploads.
    pub members_delete_any: i64,
    pub created_at: i64,
    pub document_count: i64,
}

impl Store {
    // ----- collections -----

    pub async fn insert_collection(
        &self,
        id: &str,
        name: &str,
        owner_id: &str,
        shared: bool,
        now: i64,
    ) -> Result<()> {
        let sql = "INSERT INTO collections (id, name, owner_id, shared, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(name)
            .bind(owner_id)
            .bind(shared as i64)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Collections the user owns or is a member of.
    pub async fn collections_for(&self, user_id: &str) -> Result<Vec<CollectionRow>> {
        let sql = "SELECT c.id, c.name, c.owner_id, u.username AS owner_name, c.shared, \
                   c.members_delete_any, c.created_at, (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id) \
                   AS document_count FROM collections c JOIN users u ON u.id = c.owner_id \
                   WHERE c.owner_id = $1 OR (c.shared = 1 AND EXISTS (SELECT 1 FROM \
                   collection_members m WHERE m.collection_id = c.id AND m.user_id = $1)) \
                   ORDER BY c.created_at, c.name";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)
    }

    pub async fn collection(&self, id: &str) -> Result<Option<CollectionRow>> {
        let sql = "SELECT c.id, c.name, c.owner_id, u.username AS owner_name, c.shared, \
                   c.members_delete_any, c.created_at, (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id) \
                   AS document_count FROM collections c JOIN users u ON u.id = c.owner_id \
                   WHERE c.id = $1";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
    }

    /// Lets members delete any document of the collection, or only their own uploads.
    pub async fn set_members_delete_any(&self, id: &str, any: bool) -> Result<()> {
        let sql = "UPDATE collections SET members_delete_any = $2 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(any as i64)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Makes a collection shared (members may be added) or private.
    pub async fn set_shared(&self, id: &str, shared: bool) -> Result<()> {
        let sql = "UPDATE collections SET shared = $2 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(shared as i64)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn is_member(&self, collection_id: &str, user_id: &str) -> Result<bool> {
        let sql =
            "SELECT COUNT(*) FROM collection_members WHERE collection_id = $1 AND user_id = $2";
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(collection_id)
            .bind(user_id)
            .fetch_one(pool)
            .await?);
        Ok(n > 0)
    }

    pub async fn delete_collection(&self, id: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM collections WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    pub async fn add_member(&self, collection_id: &str, user_id: &str, now: i64) -> Result<()> {
        let sql = "INSERT INTO collection_members (collection_id, user_id, added_at) \
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(collection_id)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn remove_member(&self, collection_id: &str, user_id: &str) -> Result<bool> {
        let sql = "DELETE FROM collection_members WHERE collection_id = $1 AND user_id = $2";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(collection_id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// (user id, user name) of each member.
    pub async fn members(&self, collection_id: &str) -> Result<Vec<(String, String)>> {
        let sql = "SELECT u.id, u.username FROM collection_members m JOIN users u \
                   ON u.id = m.user_id WHERE m.collection_id = $1 ORDER BY u.username";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(collection_id)
            .fetch_all(pool)
            .await)
    }

    // ----- documents -----
}
