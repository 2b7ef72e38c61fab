//! Offline tools for a stopped server's data directory: `spate check` verifies every segment
//! and index (headers, CRCs, offsets, index agreement) and reports problems by file and byte;
//! `spate dump` prints the frames of one segment. They read files directly (through the
//! engine's own format code), never through a server.

use std::path::{Path, PathBuf};

use engine::record::{self, Frame};
use engine::segment::SegmentHeader;

use super::OutputFormat;

/// Stream names by incarnation, from `catalog.json` (best effort: a damaged catalog still
/// leaves the logs checkable).
fn stream_names(data_dir: &Path) -> std::collections::HashMap<u64, String> {
    let mut names = std::collections::HashMap::new();
    let Ok(bytes) = std::fs::read(data_dir.join("catalog.json")) else { return names };
    let Ok(catalog) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return names };
    if let Some(streams) = catalog.get("streams").and_then(|s| s.as_object()) {
        for (name, stream) in streams {
            if let Some(i) = stream.get("incarnation").and_then(|i| i.as_u64()) {
                names.insert(i, name.clone());
            }
        }
    }
    names
}

fn shard_dirs(data_dir: &Path) -> Result<Vec<(u64, u32, PathBuf)>, String> {
    let streams = data_dir.join("streams");
    if !data_dir.join("catalog.json").exists() && !streams.exists() {
        return Err(format!(
            "{} is not a Spate data directory (no catalog.json, no streams/)",
            data_dir.display()
        ));
    }
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&streams) else { return Ok(out) };
    for stream in entries.flatten() {
        let Some(incarnation) = stream.file_name().to_str().and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        for shard in std::fs::read_dir(stream.path()).map_err(|e| e.to_string())?.flatten() {
            if let Some(index) = shard.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                out.push((incarnation, index, shard.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn check(data_dir: &Path, output: OutputFormat) -> Result<(), String> {
    let names = stream_names(data_dir);
    let shards = shard_dirs(data_dir)?;
    let results = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(256 << 10)
        .make()
        .map_err(|e| format!("starting an io_uring executor: {e}"))?
        .run(async move {
            let mut results = Vec::new();
            for (incarnation, index, dir) in shards {
                let (summary, problems) =
                    engine::check::check_shard_summary(&engine::GlommioStorage, &dir).await;
                results.push((incarnation, index, dir, summary, problems));
            }
            results
        });
    let mut problem_count = 0;
    let mut rows = Vec::new();
    for (incarnation, index, dir, summary, problems) in &results {
        let stream = names
            .get(incarnation)
            .cloned()
            .unwrap_or_else(|| format!("(incarnation {incarnation})"));
        problem_count += problems.len();
        match output {
            OutputFormat::Json => rows.push(serde_json::json!({
                "stream": stream,
                "shard": format!("shardId-{index:012}"),
                "dir": dir.display().to_string(),
                "segments": summary.segments,
                "records": summary.records,
                "bytes": summary.bytes,
                "problems": problems.iter().map(|p| serde_json::json!({
                    "file": p.path.display().to_string(),
                    "position": p.position,
                    "detail": p.detail,
                })).collect::<Vec<_>>(),
            })),
            _ => {
                let status = if problems.is_empty() { "ok" } else { "DAMAGED" };
                println!(
                    "{status:8} {stream} shardId-{index:012}: {} segments, {} records, {} bytes",
                    summary.segments, summary.records, summary.bytes
                );
                for p in problems {
                    println!("         {}: byte {}: {}", p.path.display(), p.position, p.detail);
                }
            }
        }
    }
    if matches!(output, OutputFormat::Json) {
        println!("{}", serde_json::json!({ "shards": rows, "problems": problem_count }));
    } else {
        println!("{} shards checked, {problem_count} problems", results.len());
    }
    if problem_count > 0 {
        return Err(format!("{problem_count} problems found in {}", data_dir.display()));
    }
    Ok(())
}

pub fn dump(segment: &Path, limit: Option<u64>, output: OutputFormat) -> Result<(), String> {
    let bytes = std::fs::read(segment).map_err(|e| format!("{}: {e}", segment.display()))?;
    let header =
        SegmentHeader::decode(&bytes).map_err(|e| format!("{}: {e}", segment.display()))?;
    let json = matches!(output, OutputFormat::Json);
    if !json {
        println!(
            "segment {}: incarnation {}, shard {}, first offset {}, created {} ms",
            segment.display(),
            header.incarnation,
            header.shard_index,
            header.first_offset,
            header.created_ms
        );
    }
    let mut position = engine::limits::SEGMENT_HEADER_BYTES;
    let mut printed = 0u64;
    loop {
        if limit.is_some_and(|l| printed >= l) {
            break;
        }
        match record::check_frame(&bytes[position..]) {
            Frame::Valid { len, offset, arrival_ms, key_len, data_len } => {
                let key = String::from_utf8_lossy(&bytes[position + 32..position + 32 + key_len]);
                let data = &bytes[position + 32 + key_len..position + len];
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "position": position, "offset": offset, "arrival_ms": arrival_ms,
                            "partition_key": key, "data_bytes": data_len,
                            "data": String::from_utf8_lossy(data),
                        })
                    );
                } else {
                    let preview: String = String::from_utf8_lossy(&data[..data.len().min(40)])
                        .chars()
                        .map(|c| if c.is_control() { '.' } else { c })
                        .collect();
                    println!(
                        "@{position:<10} offset {offset:<10} arrival {arrival_ms} key {key:?} {data_len} bytes {preview:?}"
                    );
                }
                printed += 1;
                position += len;
            }
            Frame::End => {
                if !json {
                    println!("end of log at byte {position} ({printed} frames)");
                }
                break;
            }
            Frame::Invalid(detail) => {
                return Err(format!("{}: byte {position}: {detail}", segment.display()));
            }
        }
    }
    Ok(())
}
