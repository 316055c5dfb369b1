//! HTML documents: the page's main text as markdown, headings kept, site chrome left out.
//!
//! What is indexed is what a reader came for. The content root is the page's `<main>` (or
//! `role="main"`), else its one `<article>`, else `<body>`. Inside it, navigation (`<nav>`,
//! `role="navigation"`, search, menus), scripts, styles, forms and hidden elements are
//! dropped, and so are `<header>`, `<footer>` and `<aside>` outside an article or section,
//! where they are the site's banner, footer and sidebar rather than the article's own.
//! Headings `<h1>`-`<h6>` become markdown headings, so citations carry them; `<pre>` stays
//! verbatim; list items, table rows and paragraphs become paragraphs. When the content has
//! no `<h1>`, the page's `<title>` is its title.

use scraper::{ElementRef, Html};

use super::markup::{collapse_whitespace, MarkdownWriter};
use super::SkipReason;

/// Elements never indexed, wherever they are.
const NEVER: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "form", "button", "select", "textarea",
    "input", "svg", "canvas", "iframe", "object", "embed", "dialog", "head", "menu",
];

/// ARIA roles of site chrome.
const CHROME_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "search",
    "menu",
    "menubar",
    "toolbar",
    "complementary",
];

/// Elements that start a new paragraph (and end the current one).
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "caption",
    "address",
    "details",
    "summary",
    "hr",
    "body",
    "html",
];

/// The main text of an HTML page as markdown (see the module docs).
///
/// # Errors
/// [`SkipReason::NoMainText`] when the page has no text outside its chrome.
pub(crate) fn to_markdown(html: &str) -> Result<String, SkipReason> {
    let document = Html::parse_document(html);
    let root = document.root_element();
    let title = find(root, &|e| e.value().name() == "title")
        .map(|t| collapse_whitespace(&t.text().collect::<String>()));
    let (content, in_section) = content_root(root);
    let mut walker = Walker::default();
    walker.element(content, in_section);
    walker.flush();
    if walker.markdown.is_blank() {
        return Err(SkipReason::NoMainText);
    }
    Ok(walker.markdown.finish(title.as_deref()))
}

/// Where the page's own content is, and whether it counts as inside an article (so its
/// `<header>` and `<footer>` are the article's).
fn content_root(root: ElementRef<'_>) -> (ElementRef<'_>, bool) {
    let main = find(root, &|e| {
        e.value().name() == "main" || e.value().attr("role") == Some("main")
    });
    if let Some(main) = main {
        return (main, true);
    }
    let articles: Vec<ElementRef<'_>> = root
        .descendent_elements()
        .filter(|e| e.value().name() == "article")
        .take(2)
        .collect();
    if let [article] = articles.as_slice() {
        return (*article, true);
    }
    let body = find(root, &|e| e.value().name() == "body").unwrap_or(root);
    (body, false)
}

/// The first element below `root` (depth first, in document order) that `matches`.
fn find<'a>(
    root: ElementRef<'a>,
    matches: &dyn Fn(&ElementRef<'a>) -> bool,
) -> Option<ElementRef<'a>> {
    root.descendent_elements().find(|e| matches(e))
}

/// Whether `element` is chrome or hidden, and so never indexed.
fn excluded(element: &ElementRef<'_>, in_section: bool) -> bool {
    let value = element.value();
    let name = value.name();
    if NEVER.contains(&name) || value.attr("hidden").is_some() {
        return true;
    }
    if value.attr("aria-hidden") == Some("true") {
        return true;
    }
    if value
        .attr("role")
        .is_some_and(|role| CHROME_ROLES.contains(&role.trim()))
    {
        return true;
    }
    !in_section && matches!(name, "header" | "footer" | "aside")
}

/// The text of `element` without what is never indexed inside it (a "copy" button in a
/// heading, a hidden span), whitespace kept as it is.
fn visible_text(element: ElementRef<'_>, in_section: bool) -> String {
    let mut text = String::new();
    if excluded(&element, in_section) {
        return text;
    }
    for child in element.children() {
        if let Some(t) = child.value().as_text() {
            text.push_str(t);
        } else if let Some(child) = ElementRef::wrap(child) {
            text.push_str(&visible_text(child, in_section));
        }
    }
    text
}

/// Walks the content in document order, collecting inline text into paragraphs.
#[derive(Default)]
struct Walker {
    markdown: MarkdownWriter,
    /// Inline text of the paragraph being collected; whitespace already collapsed, `\n`
    /// only from `<br>`.
    inline: String,
}

impl Walker {
    fn element(&mut self, element: ElementRef<'_>, in_section: bool) {
        if excluded(&element, in_section) {
            return;
        }
        let name = element.value().name();
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.flush();
                let level = usize::from(name.as_bytes()[1] - b'0');
                self.markdown
                    .heading(level, &visible_text(element, in_section));
            }
            "pre" => {
                self.flush();
                self.markdown.code(&visible_text(element, in_section));
            }
            "br" => self.inline.push('\n'),
            "li" => {
                self.flush();
                self.inline.push_str("- ");
                self.children(element, in_section);
                self.flush();
            }
            "tr" => {
                self.flush();
                let cells: Vec<String> = element
                    .child_elements()
                    .filter(|c| matches!(c.value().name(), "td" | "th"))
                    .map(|c| collapse_whitespace(&visible_text(c, in_section)))
                    .filter(|c| !c.is_empty())
                    .collect();
                self.markdown.paragraph(&cells.join(" | "));
            }
            "img" => {
                if let Some(alt) = element.value().attr("alt") {
                    self.text(alt);
                }
            }
            _ if BLOCKS.contains(&name) => {
                self.flush();
                let inner = in_section || matches!(name, "article" | "section" | "main");
                self.children(element, inner);
                self.flush();
            }
            _ => self.children(element, in_section),
        }
    }

    fn children(&mut self, element: ElementRef<'_>, in_section: bool) {
        for child in element.children() {
            if let Some(text) = child.value().as_text() {
                self.text(text);
            } else if let Some(child) = ElementRef::wrap(child) {
                self.element(child, in_section);
            }
        }
    }

    /// Adds inline text with its whitespace collapsed (HTML renders a run as one space).
    fn text(&mut self, text: &str) {
        for c in text.chars() {
            if !c.is_whitespace() {
                self.inline.push(c);
            } else if !(self.inline.is_empty() || self.inline.ends_with([' ', '\n'])) {
                self.inline.push(' ');
            }
        }
    }

    /// Ends the paragraph being collected.
    fn flush(&mut self) {
        let paragraph = std::mem::take(&mut self.inline);
        let paragraph = paragraph.trim();
        if paragraph.is_empty() || paragraph == "-" {
            return;
        }
        self.markdown.paragraph(paragraph);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!doctype html>
<html><head><title>Widget manual | Acme</title><style>body { color: red }</style></head>
<body>
  <header><a href="/">Acme home</a><nav><a href="/pricing">Pricing</a></nav></header>
  <div role="navigation">Sitemap links</div>
  <main>
    <h1>Installing the widget <button>Copy link</button></h1>
    <p>Unpack the   widget and <em>mount</em> it<br>on the wall.</p>
    <aside>Tip: use two screws.</aside>
    <h2>Wiring</h2>
    <ul><li>Red goes to <b>live</b>.</li><li>Blue goes to neutral.</li></ul>
    <pre>wire --check
  --verbose</pre>
    <table><tr><th>Pin</th><th>Colour</th></tr><tr><td>1</td><td>red</td></tr></table>
    <p hidden>Secret hidden text.</p>
    <script>var tracking = "analytics";</script>
  </main>
  <footer>Copyright Acme Corp</footer>
</body></html>"#;

    #[test]
    fn main_text_and_headings_without_the_chrome() {
        let markdown = to_markdown(PAGE).expect("has main text");
        assert_eq!(
            markdown,
            "# Installing the widget\n\n\
             Unpack the widget and mount it\non the wall.\n\n\
             Tip: use two screws.\n\n\
             ## Wiring\n\n\
             - Red goes to live.\n\n\
             - Blue goes to neutral.\n\n\
             ```\nwire --check\n  --verbose\n```\n\n\
             Pin | Colour\n\n\
             1 | red\n\n"
        );
    }

    #[test]
    fn without_main_the_body_minus_banner_footer_and_sidebar() {
        let markdown = to_markdown(
            "<html><head><title>Notes</title></head><body><header>Site banner</header>\
             <aside>Sidebar</aside><p>Body text</p><footer>Footer</footer></body></html>",
        );
        assert_eq!(markdown, Ok("# Notes\n\nBody text\n\n".to_owned()));
        let chrome = "<title>T</title><nav>Only chrome</nav><h2>Heading alone</h2>";
        assert_eq!(to_markdown(chrome), Err(SkipReason::NoMainText));
    }
}
