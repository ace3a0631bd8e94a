"""A retrieved chunk is placed under the heading it came from, or nowhere when it cannot be."""

from proxy.documents.sections import first_section, locate, section_of

PAGE = (
    "# Configuration {#configuration}\n\nEvery setting lives in one file.\n\n"
    "## site_name {#site_name}\n\nThe site_name option sets the title\nshown in the header.\n\n"
    "## Database {#database}\n\nThe DATABASE_URL setting chooses the database.\n"
)


def test_a_chunk_is_found_whatever_its_whitespace():
    chunk = "The site_name option sets the title shown   in the header."
    assert locate(PAGE, chunk) == PAGE.index("The site_name")
    heading = section_of(PAGE, chunk)
    assert heading is not None and (heading.title, heading.anchor) == ("site_name", "site_name")


def test_a_chunk_with_the_upload_header_is_placed_by_a_line_of_its_own():
    chunk = "Title: Configuration\nURL: https://docs.test/config\n\n" + PAGE[:60]
    chunk += "\nThe DATABASE_URL setting chooses the database."
    heading = section_of(PAGE, chunk.replace(PAGE[:60], "changed since the upload"))
    assert heading is not None and heading.anchor == "database"


def test_text_before_any_section_or_not_in_the_page_names_no_section():
    assert section_of(PAGE, "Every setting lives in one file.") is None
    assert section_of(PAGE, "Nothing like this is written anywhere on the page.") is None
    # The best-ranked chunk that can be placed decides.
    chunks = ["not on this page at all, in any form", "The DATABASE_URL setting chooses"]
    heading = first_section(PAGE, chunks)
    assert heading is not None and heading.title == "Database"
