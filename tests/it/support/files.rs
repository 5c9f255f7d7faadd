//! Documents made in the tests, and what the server costs read from /proc.

use std::io::Write;

/// A PDF with one page per entry of `pages`, each showing its text in 18 pt Helvetica.
pub fn pdf(pages: &[String]) -> Vec<u8> {
    let contents: Vec<String> = pages
        .iter()
        .map(|text| format!("BT /F1 18 Tf 72 700 Td ({text}) Tj ET"))
        .collect();
    pdf_of_contents(&contents)
}

/// A PDF with one page per content stream (PDF operators, font /F1 available), each stream
/// deflated as PDF writers do.
pub fn pdf_of_contents(contents: &[String]) -> Vec<u8> {
    let pages = contents;
    let mut streams = Vec::new();
    // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content per page.
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 4 + 2 * i))
        .collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    for (i, content) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
             /Resources << /Font << /F1 3 0 R >> >> >>",
            5 + 2 * i
        ));
        let mut deflate =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(content.as_bytes()).unwrap();
        let stream = deflate.finish().unwrap();
        objects.push(format!(
            "<< /Length {} /Filter /FlateDecode >>\nstream\n",
            stream.len()
        ));
        streams.push((objects.len() - 1, stream));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}", i + 1).as_bytes());
        if let Some((_, stream)) = streams.iter().find(|(at, _)| *at == i) {
            out.extend_from_slice(stream);
            out.extend_from_slice(b"\nendstream");
        }
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A DOCX whose word/document.xml is `paragraph` repeated until it is `inflated` bytes,
/// deflated as it is written (never held whole).
pub fn docx_inflating_to(paragraph: &str, inflated: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(inflated > u32::MAX as usize);
    zip.start_file("[Content_Types].xml", deflated).unwrap();
    zip.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
    zip.start_file("word/document.xml", deflated).unwrap();
    let block = paragraph.repeat((1 << 20) / paragraph.len());
    let mut written = 0;
    while written < inflated {
        let n = block.len().min(inflated - written);
        zip.write_all(&block.as_bytes()[..n]).unwrap();
        written += n;
    }
    zip.finish().unwrap().into_inner()
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`: the peak).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(&format!("{field}:")))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time the process has used (user + system), in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    field(11) + field(12)
}
