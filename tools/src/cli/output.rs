//! How the verbs print: aligned text tables, JSON documents, and records in the text, JSON-lines
//! and raw formats. Writes to stdout go through a locked handle so that a closed pipe
//! (`spate tail ... | head`) ends the command quietly instead of panicking.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;
use spate_proto::base64;

use crate::cli::RecordFormat;
use crate::kinesis::Record;
use crate::timefmt;

/// Prints `rows` under `headers`, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Key/value lines with aligned values.
pub fn pairs(items: &[(&str, String)]) -> String {
    let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    items.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    write_stdout(format!("{text}\n").as_bytes())
}

/// Writes to stdout; a closed pipe is not an error worth reporting, so it ends the process.
pub fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(format!("writing output: {e}")),
    }
}

/// Data shown as text when it is printable UTF-8, else as `base64:...`.
pub fn data_as_text(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) if !text.chars().any(|c| c.is_control() && c != '\t') => text.to_string(),
        Ok(text) if text.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
            text.escape_debug().to_string()
        }
        _ => format!("base64:{}", base64::encode(data)),
    }
}

/// One record in `format`, with its trailing newline.
pub fn format_record(shard_id: &str, record: &Record, format: RecordFormat) -> Vec<u8> {
    let data = base64::decode(&record.data).unwrap_or_default();
    match format {
        RecordFormat::Raw => {
            let mut out = data;
            out.push(b'\n');
            out
        }
        RecordFormat::Json => {
            let value = json!({
                "ShardId": shard_id,
                "SequenceNumber": record.sequence_number,
                "PartitionKey": record.partition_key,
                "ApproximateArrivalTimestamp": record.approximate_arrival_timestamp,
                "Data": record.data,
            });
            let mut out = serde_json::to_vec(&value).expect("serializes");
            out.push(b'\n');
            out
        }
        RecordFormat::Text => {
            let arrival = record
                .approximate_arrival_timestamp
                .map(timefmt::rfc3339_millis)
                .unwrap_or_else(|| "-".to_string());
            format!(
                "{shard_id}  {}  {arrival}  {}  {}\n",
                record.sequence_number,
                record.partition_key,
                data_as_text(&data)
            )
            .into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let text = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(text, "A    LONGER\nxyz  1\n");
    }

    #[test]
    fn records_render_in_each_format() {
        let record = Record {
            sequence_number: "1".into(),
            partition_key: "k".into(),
            data: base64::encode(b"hello"),
            approximate_arrival_timestamp: Some(1_700_000_000.0),
        };
        let text = String::from_utf8(format_record("s-0", &record, RecordFormat::Text)).unwrap();
        assert_eq!(text, "s-0  1  2023-11-14T22:13:20.000Z  k  hello\n");
        assert_eq!(format_record("s-0", &record, RecordFormat::Raw), b"hello\n");
        let json: serde_json::Value =
            serde_json::from_slice(&format_record("s-0", &record, RecordFormat::Json)).unwrap();
        assert_eq!(json["Data"], "aGVsbG8=");
        assert_eq!(data_as_text(&[0xff, 0]), "base64:/wA=");
        assert_eq!(data_as_text(b"a\nb"), "a\\nb");
    }
}
