//! Documents for ingestion tests, written by the tests themselves: minimal PDFs.
//!
//! PDF syntax is text; only the cross-reference table needs the byte offsets of the
//! objects, which [`pdf`] computes. Pages use Helvetica, one of the fonts every PDF reader
//! knows without an embedded font program.

/// A PDF with one page per entry of `pages`, each a content stream, with Helvetica as
/// font `/F1` in every page's resources.
pub fn pdf(pages: &[String]) -> Vec<u8> {
    pdf_with_font_encoding(pages, "WinAnsiEncoding")
}

/// Like [`pdf`], but the font names an encoding that does not exist: a malformed file of
/// the kind that makes some PDF readers give up (pdf-extract panics on it).
pub fn pdf_with_an_unknown_font_encoding(pages: &[String]) -> Vec<u8> {
    pdf_with_font_encoding(pages, "NoSuchEncoding")
}

fn pdf_with_font_encoding(pages: &[String], encoding: &str) -> Vec<u8> {
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        String::new(), // the page tree, once the page ids are known
        format!("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /{encoding} >>"),
    ];
    let mut kids = Vec::new();
    for content in pages {
        let page_id = objects.len() + 1;
        kids.push(format!("{page_id} 0 R"));
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
             /Resources << /Font << /F1 3 0 R >> >> >>",
            page_id + 1
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len() + 1
        ));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    );
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

/// A page content stream that writes `lines` of text, one under the other: a page with a
/// text layer.
pub fn text_page(lines: &[&str]) -> String {
    let shown: Vec<String> = lines
        .iter()
        .map(|l| {
            let escaped = l
                .replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)");
            format!("({escaped}) Tj T*")
        })
        .collect();
    format!("BT /F1 12 Tf 16 TL 72 720 Td {} ET", shown.join(" "))
}

/// A page content stream that only draws (a filled rectangle): what a scanned page is to
/// a text extractor, a page without a text layer.
pub fn drawing_page() -> String {
    "0.2 0.4 0.8 rg 72 400 300 200 re f".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_reference_table_points_at_the_objects() {
        let bytes = pdf(&[text_page(&["Hello (world)"]), drawing_page()]);
        let text = String::from_utf8(bytes).expect("a PDF of text");
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(text[xref_at..].starts_with("xref\n0 8\n"));
        for (i, entry) in text[xref_at..].lines().skip(3).take(7).enumerate() {
            let offset: usize = entry[..10].parse().expect("offset");
            assert!(
                text[offset..].starts_with(&format!("{} 0 obj", i + 1)),
                "{entry}"
            );
        }
        assert!(text.contains("(Hello \\(world\\)) Tj"));
    }
}
