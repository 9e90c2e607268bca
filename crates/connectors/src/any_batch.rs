//! Batch reads and writes for a connector of any kind: the kinds that can read in bulk
//! (PostgreSQL, MySQL/MariaDB, files) and write in bulk (PostgreSQL, MySQL/MariaDB).

use crate::batch::{
    BatchDestination, BatchSource, BatchStream, BatchWriter, ReadSpec, RecordBatch, SchemaRef,
    WriteSpec,
};
use crate::{AnyConnector, ConnectorError};

/// A writer of any kind that writes.
#[derive(Debug)]
pub enum AnyWriter {
    Postgres(crate::postgres::PostgresWriter),
    Mysql(crate::mysql::MysqlWriter),
}

fn cannot(what: &str, kind: &str) -> ConnectorError {
    ConnectorError::config(
        "connection_id",
        format!("a {kind} connection cannot {what} in bulk"),
    )
}

fn kind_name(c: &AnyConnector) -> &'static str {
    match c {
        AnyConnector::Postgres(_) => "postgres",
        AnyConnector::Mysql(_) => "mysql",
        AnyConnector::Sqlite(_) => "sqlite",
        AnyConnector::Files(_) => "files",
        AnyConnector::Rest(_) => "rest",
        AnyConnector::Tryton(_) => "tryton",
    }
}

impl BatchSource for AnyConnector {
    async fn read(&self, spec: ReadSpec) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        let object = spec.object.clone();
        match self {
            AnyConnector::Postgres(c) => c.read(spec).await,
            AnyConnector::Mysql(c) => c.read(spec).await,
            AnyConnector::Files(c) => c.read(spec).await,
            other => Err(cannot("be read", kind_name(other))),
        }
        .map_err(|err| err.about_object(&object))
    }

    async fn read_pg_binary(
        &self,
        spec: ReadSpec,
    ) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        match self {
            AnyConnector::Postgres(c) => {
                let object = spec.object.clone();
                c.read_pg_binary(spec)
                    .await
                    .map_err(|err| err.about_object(&object))
            }
            _ => self.read(spec).await,
        }
    }
}

impl BatchDestination for AnyConnector {
    type Writer = AnyWriter;

    fn takes_pg_binary(&self) -> bool {
        matches!(self, AnyConnector::Postgres(_))
    }

    async fn writer(&self, spec: WriteSpec) -> Result<AnyWriter, ConnectorError> {
        let object = spec.object.clone();
        match self {
            AnyConnector::Postgres(c) => c.writer(spec).await.map(AnyWriter::Postgres),
            AnyConnector::Mysql(c) => c.writer(spec).await.map(AnyWriter::Mysql),
            other => Err(cannot("be written", kind_name(other))),
        }
        .map_err(|err| err.about_object(&object))
    }
}

impl BatchWriter for AnyWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        match self {
            AnyWriter::Postgres(w) => w.write(batch).await,
            AnyWriter::Mysql(w) => w.write(batch).await,
        }
    }

    async fn commit(self) -> Result<u64, ConnectorError> {
        match self {
            AnyWriter::Postgres(w) => w.commit().await,
            AnyWriter::Mysql(w) => w.commit().await,
        }
    }

    async fn abort(self) {
        match self {
            AnyWriter::Postgres(w) => w.abort().await,
            AnyWriter::Mysql(w) => w.abort().await,
        }
    }
}
