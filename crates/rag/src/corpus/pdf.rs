//! PDF documents: the text layer of each page, as markdown with one section per page.
//!
//! Extraction is pure Rust (pdf-extract on lopdf). Each page becomes a `## Page N` section,
//! so a citation says which page a passage came from. A PDF whose pages carry no text (a
//! scan, a drawing) is skipped with [`SkipReason::NoTextLayer`]; one that cannot be parsed
//! (damaged, encrypted with a password, not a PDF at all) with [`SkipReason::Unparsable`].

use super::markup::MarkdownWriter;
use super::SkipReason;

/// Name of the thread that runs the extraction. pdf-extract panics on some malformed
/// files; the panic is caught and the file skipped, and a binary that wants to keep such
/// panics off the terminal can recognise them by this thread name in its panic hook.
pub const PDF_THREAD_NAME: &str = "ragchat-pdf-extract";

/// The text of a PDF's pages as markdown, one `## Page N` section per page with text.
///
/// # Errors
/// [`SkipReason::Unparsable`] when the file cannot be parsed (the parser's message, or the
/// panic it raised); [`SkipReason::NoTextLayer`] when no page has any text.
pub(crate) fn to_markdown(bytes: Vec<u8>) -> Result<String, SkipReason> {
    let pages = extract_pages(bytes)?;
    let mut markdown = MarkdownWriter::default();
    for (number, page) in pages.iter().enumerate() {
        if page.trim().is_empty() {
            continue;
        }
        markdown.heading(2, &format!("Page {}", number + 1));
        // pdf-extract ends lines where the page's text lines end and leaves an empty line
        // between blocks: keep both, so paragraphs stay paragraphs.
        for block in page.split("\n\n") {
            markdown.paragraph(block);
        }
    }
    if markdown.is_blank() {
        return Err(SkipReason::NoTextLayer { pages: pages.len() });
    }
    Ok(markdown.finish(None))
}

/// Each page's text, on a thread of its own so that a panic in the parser is contained.
fn extract_pages(bytes: Vec<u8>) -> Result<Vec<String>, SkipReason> {
    let worker = std::thread::Builder::new()
        .name(PDF_THREAD_NAME.to_owned())
        .spawn(move || pdf_extract::extract_text_from_mem_by_pages(&bytes))
        .map_err(|e| SkipReason::Unreadable(format!("cannot start the PDF reader: {e}")))?;
    match worker.join() {
        Ok(Ok(pages)) => Ok(pages),
        Ok(Err(error)) => Err(SkipReason::Unparsable(error.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the PDF reader failed".to_owned());
            Err(SkipReason::Unparsable(message))
        }
    }
}
