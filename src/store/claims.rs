//! The recipe claims (which file owns each recipe id and webhook path), kept so
//! that "first claimed wins" survives restarts.

use super::writer::Op;
use super::{Error, Store};
use crate::recipe::{ClaimKind, Claims};

/// One stored claim: kind, name, owner file.
pub(super) type ClaimRow = (String, String, String);

impl Store {
    /// The claims as the last load left them.
    pub async fn recipe_claims(&self) -> Result<Claims, Error> {
        let rows: Vec<ClaimRow> = sqlx::query_as("SELECT kind, name, file FROM recipe_claims")
            .fetch_all(&self.pool)
            .await?;
        Ok(Claims::new(rows.into_iter().filter_map(|(kind, name, file)| {
            Some(((ClaimKind::parse(&kind)?, name), file))
        })))
    }

    /// Replaces the stored claims with these.
    pub async fn save_recipe_claims(&self, claims: &Claims) -> Result<(), Error> {
        let rows: Vec<ClaimRow> = claims
            .iter()
            .map(|((kind, name), file)| (kind.as_str().to_owned(), name.clone(), file.clone()))
            .collect();
        self.writer.write(|reply| Op::SaveClaims(rows, reply)).await
    }
}

/// Inside the writer's transaction.
pub(super) fn replace(connection: &rusqlite::Connection, rows: &[ClaimRow]) -> rusqlite::Result<()> {
    connection.prepare_cached("DELETE FROM recipe_claims")?.execute([])?;
    let mut insert = connection.prepare_cached("INSERT INTO recipe_claims (kind, name, file) VALUES (?1, ?2, ?3)")?;
    for (kind, name, file) in rows {
        insert.execute(rusqlite::params![kind, name, file])?;
    }
    Ok(())
}
