//! The recipe claims (which file owns each recipe id and webhook path), kept so
//! that "first claimed wins" survives restarts.

use super::{Error, SqliteStore};
use crate::recipe::{ClaimChanges, ClaimKind, Claims};

/// One stored claim: kind, name, owner file.
pub(super) type ClaimRow = (String, String, String);

impl SqliteStore {
    /// The claims as the last load left them.
    pub async fn recipe_claims(&self) -> Result<Claims, Error> {
        let rows: Vec<ClaimRow> = sqlx::query_as("SELECT kind, name, file FROM recipe_claims")
            .fetch_all(&self.pool)
            .await?;
        Ok(Claims::new(rows.into_iter().filter_map(|(kind, name, file)| {
            Some(((ClaimKind::parse(&kind)?, name), file))
        })))
    }

    /// Replaces the stored claims with these (at start, after the first load).
    pub async fn save_recipe_claims(&self, claims: &Claims) -> Result<(), Error> {
        let rows: Vec<ClaimRow> = claims
            .iter()
            .map(|((kind, name), file)| (kind.as_str().to_owned(), name.clone(), file.clone()))
            .collect();
        let replace = ClaimWrite::Replace(rows);
        self.writer
            .write(move |statements| write(statements.connection, &replace))
            .await
    }

    /// Stores what a reload changed in the claims.
    pub async fn update_recipe_claims(&self, changes: &ClaimChanges) -> Result<(), Error> {
        let freed = changes
            .freed
            .iter()
            .map(|(kind, name)| (kind.as_str().to_owned(), name.clone()))
            .collect();
        let taken = changes
            .taken
            .iter()
            .map(|((kind, name), file)| (kind.as_str().to_owned(), name.clone(), file.clone()))
            .collect();
        let change = ClaimWrite::Change { freed, taken };
        self.writer
            .write(move |statements| write(statements.connection, &change))
            .await
    }
}

/// A write of the claims.
#[derive(Debug)]
pub(super) enum ClaimWrite {
    /// All of them.
    Replace(Vec<ClaimRow>),
    /// Names freed (kind, name), then names taken.
    Change {
        freed: Vec<(String, String)>,
        taken: Vec<ClaimRow>,
    },
}

/// Inside the writer's transaction.
pub(super) fn write(connection: &rusqlite::Connection, write: &ClaimWrite) -> rusqlite::Result<()> {
    let rows = match write {
        ClaimWrite::Replace(rows) => {
            connection.prepare_cached("DELETE FROM recipe_claims")?.execute([])?;
            rows
        }
        ClaimWrite::Change { freed, taken } => {
            let mut delete = connection.prepare_cached("DELETE FROM recipe_claims WHERE kind = ?1 AND name = ?2")?;
            for (kind, name) in freed {
                delete.execute(rusqlite::params![kind, name])?;
            }
            taken
        }
    };
    let mut insert =
        connection.prepare_cached("INSERT OR REPLACE INTO recipe_claims (kind, name, file) VALUES (?1, ?2, ?3)")?;
    for (kind, name, file) in rows {
        insert.execute(rusqlite::params![kind, name, file])?;
    }
    Ok(())
}
