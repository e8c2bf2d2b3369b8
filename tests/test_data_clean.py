from growlm.data.clean import (
    decode_utf8,
    html_paragraphs,
    html_text,
    split_fortunes,
    strip_pos_tags,
    strip_terminal_codes,
)

PAGE = """<!DOCTYPE html>
<html><head><title>Find Bar</title><script>var x = "script text";</script></head>
<body>
<header><a><p>LibreOffice 7.4 Help</p></a></header>
<aside class="leftside"><div>Index</div><nav>Contents</nav></aside>
<ul class="docnav"><li>Prev</li><li>Next</li></ul>
<div id="DisplayArea">
  <h1 id="hd_id1">Find   Bar</h1>
  <p id="par_id2" class="paragraph">The <span class="menuitem">Find</span>
     toolbar searches.</p>
  <p id="par_id3">Use <span class="switchinline"><span hidden="true" class="MAC">Command</span>
     <span hidden="true">Ctrl</span></span> + F.</p>
  <ul><li><p id="par_id4">Nested item</p></li><li>Plain item</li></ul>
  <div class="para">Handbook paragraph <code>apt</code> text.</div>
  <pre class="screen">$ apt update
  done   </pre>
  <p id="par_id5"><img alt="icon only"></p>
</div>
<footer><p>This page is: /text/shared/find.xhp</p></footer>
</body></html>
"""


def test_html_paragraphs_keep_ids_and_text_and_drop_furniture(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    paragraphs = html_paragraphs(page)
    assert paragraphs == [
        ("hd_id1", "Find Bar"),
        ("par_id2", "The Find toolbar searches."),
        ("par_id3", "Use Ctrl + F."),
        ("par_id4", "Nested item"),
        (None, "Plain item"),
        (None, "Handbook paragraph apt text."),
        (None, "$ apt update\n  done"),
    ]
    text = html_text(page)
    assert text == "\n".join(t for _, t in paragraphs)
    for furniture in ("LibreOffice 7.4 Help", "Index", "Contents", "Prev", "script text", "This page is", "Command"):
        assert furniture not in text


def test_fortunes_split_on_percent_lines_and_lose_terminal_codes():
    raw = "First\nentry\n%\n\x1b[33m  -- Colour\x1b[m\n%\r\n%\nwhole ____\b\b\b\bBODY and Ren'\be\x07\n%\n"
    text, bad = decode_utf8(raw.encode("utf-8"))
    assert bad == 0
    assert split_fortunes(text) == ["First\nentry", "  -- Colour", "whole BODY and Rene"]


def test_strip_terminal_codes_keeps_tabs_and_newlines():
    assert strip_terminal_codes("a\tb\nc\x00\x1b[1;32md") == "a\tb\ncd"


def test_pos_tags_and_brackets_are_stripped():
    line = "[中央/n  人民/n  广播/vn  电台/n]nt  发表/v  １９９８年/t  新年/t  讲话/n  。/w"
    assert strip_pos_tags(line) == "中央人民广播电台发表１９９８年新年讲话。"


def test_undecodable_bytes_are_counted_and_replaced():
    data = "héllo".encode("utf-8") + b"\xff\xfe" + " мир\r\n".encode("utf-8") + b"\xc3"
    text, bad = decode_utf8(data)
    assert bad == 3
    assert text == "héllo\ufffd\ufffd мир\n\ufffd"
    assert decode_utf8(b"\xef\xbb\xbfplain") == ("plain", 0)
