"""Ranking on a small fixed corpus, the same on SQLite (FTS5) and PostgreSQL (tsvector)."""

import pytest

from apps.catalog import selectors, services
from apps.catalog.models import Dataset
from tests.catalog.factories import make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(users):
    owner = users["scientist"]
    make_dataset(owner, "Customer churn", description="Monthly churn labels per customer.", tags=["retention"])
    make_dataset(owner, "Loan applications", description="Applications with a churn flag column.", tags=["credit"])
    make_dataset(owner, "Branch locations", description="Addresses of branches.", tags=["geo"])
    make_dataset(owner, "Card transactions", description="Authorised card payments.", tags=["fraud", "churn"])
    return owner


def names(user, text, **filters):
    return [d.name for d in selectors.search_datasets(user, text=text, filters=filters).datasets]


def test_a_name_match_ranks_above_tag_and_description_matches(corpus):
    found = names(corpus, "churn")
    assert found[0] == "Customer churn"
    assert set(found) == {"Customer churn", "Loan applications", "Card transactions"}
    assert found.index("Card transactions") < found.index("Loan applications"), "tags weigh more than descriptions"


def test_column_names_are_searched(corpus):
    assert set(names(corpus, "email")) == {
        "Customer churn",
        "Loan applications",
        "Branch locations",
        "Card transactions",
    }
    assert names(corpus, "customer_id")


def test_words_are_prefixes_and_all_must_match(corpus):
    assert names(corpus, "transact") == ["Card transactions"]
    assert names(corpus, "card churn") == ["Card transactions"]
    assert names(corpus, "nothing-like-this") == []


def test_facets_filter_and_count(corpus):
    assert names(corpus, "churn", tag=["credit"]) == ["Loan applications"]
    result = selectors.search_datasets(corpus, text="")
    tags = {item["value"]: item["count"] for item in result.facets["tag"]}
    assert tags["churn"] == 1 and tags["credit"] == 1


def test_search_text_follows_edits(corpus):
    dataset = selectors.search_datasets(corpus, text="branch").datasets[0]
    services.update_dataset(dataset=dataset, by=corpus, description="Store footfall and opening hours.")
    assert names(corpus, "footfall") == ["Branch locations"]
    assert names(corpus, "addresses") == []


def count_queries(func) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured.captured_queries)


def test_list_search_and_detail_run_in_a_constant_number_of_queries(corpus, client):
    client.force_login(corpus)
    slug = selectors.search_datasets(corpus, text="branch").datasets[0].slug
    pages = {
        "search": lambda: client.get("/catalog/", {"q": "churn"}),
        "list": lambda: client.get("/catalog/"),
        "detail": lambda: client.get(f"/catalog/datasets/{slug}/"),
        "api": lambda: client.get("/api/v1/datasets/", {"q": "churn"}),
    }
    for page in pages.values():
        page()  # warm per-process caches (content types, session) before counting
    before = {name: count_queries(page) for name, page in pages.items()}
    for i in range(12):
        make_dataset(corpus, f"Churn extra {i}", tags=[f"t{i}", "churn"])
    after = {name: count_queries(page) for name, page in pages.items()}
    assert after == before
    # On PostgreSQL a search tier may ask the planner's estimate first (search._planner_estimate).
    assert before["search"] <= 24 and before["detail"] <= 25, before


def test_cached_facets_follow_catalog_writes(corpus, settings, django_capture_on_commit_callbacks):
    settings.CATALOG_FACET_CACHE_SECONDS = 60
    before = {i["value"]: i["count"] for i in selectors.search_datasets(corpus).facets["classification"]}
    with django_capture_on_commit_callbacks(execute=True):
        make_dataset(corpus, "Another public one", classification="public")
    after = {i["value"]: i["count"] for i in selectors.search_datasets(corpus).facets["classification"]}
    assert after.get("public", 0) == before.get("public", 0) + 1


def test_search_facets_count_exactly_the_visible_results(corpus, users):
    hidden = make_dataset(users["admin"], "Churn secrets", visibility="private", tags=["churn"])
    result = selectors.search_datasets(corpus, text="churn")
    names_found = {d.name for d in result.datasets[0 : len(result.datasets)]}
    assert hidden.name not in names_found
    from apps.catalog.models import Dataset

    expected = selectors.facet_counts(Dataset.objects.filter(name__in=names_found))
    assert {f: sorted((i["value"], i["count"]) for i in v) for f, v in result.facets.items()} == {
        f: sorted((i["value"], i["count"]) for i in v) for f, v in expected.items()
    }


@pytest.mark.parametrize("trust_estimate", [False, True], ids=["counted", "planner-estimate"])
def test_a_common_word_lists_each_tier_by_name_without_ranking_every_match(users, monkeypatch, trust_estimate):
    from apps.catalog import search

    # PostgreSQL: with 0 any estimate counts as common and the count is skipped; with a huge
    # factor none does, and the ranked pass counts the matches first.
    monkeypatch.setattr(search, "_SURELY_COMMON", 0 if trust_estimate else 10**9)

    owner = users["scientist"]
    for name in ["Delta churn", "Alpha churn", "Echo churn", "Charlie churn", "Bravo churn", "Foxtrot churn"]:
        make_dataset(owner, name, description="Monthly figures.")
    make_dataset(owner, "Aardvark sightings", description="Nothing to do with churn.")
    # Asking for 3 of 7 matches makes "churn" common (more than sqrt(3 × 7) matches): the name
    # tier is walked in name order and the description-only match never makes the cut.
    found = search.ranked_ids("churn", limit=3)
    assert [Dataset.objects.get(pk=pk).name for pk in found] == ["Alpha churn", "Bravo churn", "Charlie churn"]


def test_name_matches_come_before_description_matches_even_when_listed_by_name(users):
    from apps.catalog import search

    owner = users["scientist"]
    for name in ["Aardvark sightings", "Aardwolf sightings", "Abacus sightings"]:
        make_dataset(owner, name, description="Churn of the zoo's visitors.")
    for name in ["Zulu churn", "Yankee churn", "X-ray churn"]:
        make_dataset(owner, name, description="Monthly figures.")
    found = search.ranked_ids("churn", limit=4)
    names_found = [Dataset.objects.get(pk=pk).name for pk in found]
    assert set(names_found[:3]) == {"X-ray churn", "Yankee churn", "Zulu churn"}  # few: ranked
    assert names_found[3] == "Aardvark sightings"


def test_facet_names_are_kept_between_searches_and_refreshed_by_a_catalog_write(corpus, settings):
    from apps.catalog import search
    from apps.catalog.models import Tag

    settings.CATALOG_FACET_CACHE_SECONDS = 60
    search._bump_generation()  # a fresh generation: nothing kept from other tests

    def tag_facet() -> tuple[int, dict]:
        queries = count_queries(lambda: selectors.search_datasets(corpus, text="churn"))
        result = selectors.search_datasets(corpus, text="churn")
        return queries, {item["value"]: item["count"] for item in result.facets["tag"]}

    first_queries, first = tag_facet()
    second_queries, second = tag_facet()
    assert second == first and "retention" in first
    assert second_queries < first_queries  # owner, domain and tag names came from the process
    Tag.objects.filter(name="retention").update(name="kept-customers")
    search._bump_generation()  # what every catalog service does on commit
    _, renamed = tag_facet()
    assert "kept-customers" in renamed and "retention" not in renamed
    assert renamed["kept-customers"] == first["retention"]  # counts are always live


@pytest.mark.parametrize("query", [{"q": "churn"}, {}], ids=["search", "browse"])
def test_result_list_shows_each_datasets_tags_owner_and_version(corpus, client, query):
    from apps.catalog.models import Dataset

    client.force_login(corpus)
    Dataset.objects.filter(name="Card transactions").update(description="Authorised **card** payments.")
    html = client.get("/catalog/", query).content.decode()
    card = html[html.index("Card transactions") :]
    card = card[: card.index("</a>")]
    assert ">churn</span>" in card and ">fraud</span>" in card  # tag names, in name order
    assert card.index(">churn</span>") < card.index(">fraud</span>")
    assert str(corpus) in card and "Authorised card payments." in card
    assert 'class="badge text-bg-' in card and "Internal" in card  # the classification badge


@pytest.mark.parametrize("query", [{"q": "churn"}, {}], ids=["search", "browse"])
def test_the_api_lists_each_datasets_tag_names_in_name_order(corpus, client, query):
    client.force_login(corpus)
    results = {row["name"]: row for row in client.get("/api/v1/datasets/", query).json()["results"]}
    assert results["Card transactions"]["tag_names"] == ["churn", "fraud"]
    assert results["Customer churn"]["tag_names"] == ["retention"]
    assert results["Customer churn"]["owner"] == str(corpus.username)


def test_private_datasets_carry_a_lock_badge_in_lists_and_on_their_page(corpus, client):
    dataset = make_dataset(corpus, "Secret churn", visibility="private", classification="pii")
    client.force_login(corpus)
    listed = client.get("/catalog/", {"q": "secret"}).content.decode()
    page = client.get(f"/catalog/datasets/{dataset.slug}/").content.decode()
    for html in (listed, page):
        assert '<span class="badge text-bg-danger">PII</span>' in html
        assert '<i class="bi bi-lock"></i> private</span>' in html


def test_the_last_word_matches_as_a_prefix_the_others_as_whole_words(corpus):
    assert names(corpus, "churn cust")[0] == "Customer churn"  # "cust" is still being typed
    assert "Customer churn" not in names(corpus, "cust churn")  # "cust" was finished: no such word
    assert names(corpus, "customer churn")[0] == "Customer churn"


def test_rare_whole_words_find_what_the_index_over_every_word_finds(corpus, monkeypatch):
    """PostgreSQL: when a search's whole words are rare, the index finds them and each of their
    rows is tested for the last word's prefix; the answer is the same as the index's over every
    word, stop words included."""
    from django.db import connection

    from apps.catalog import search

    if connection.vendor != "postgresql":
        pytest.skip("the tiers' strategies are PostgreSQL's")
    texts = ["churn cust", "monthly cust", "the cust", "of the churn", "card churn", "churn zzz"]
    chosen = []
    rare_whole_words = search._rare_whole_words
    monkeypatch.setattr(search, "_rare_whole_words", lambda *a: chosen.append(rare_whole_words(*a)) or chosen[-1])
    by_whole_words = {text: names(corpus, text) for text in texts}
    assert any(chosen), "the whole-words strategy was never chosen"
    monkeypatch.setattr(search, "_rare_whole_words", lambda *a: None)
    assert {text: names(corpus, text) for text in texts} == by_whole_words
    assert by_whole_words["the cust"] == names(corpus, "cust") and by_whole_words["the cust"][0] == "Customer churn"
    assert by_whole_words["churn zzz"] == []


@pytest.mark.parametrize(
    "text",
    ["the", "the of and", "churn the", "a b c d", "ünïcödé churn", "x" * 300, "___", "1 2", "c'est l'été", "*:&|!"],
)
def test_odd_search_text_answers_a_page_not_an_error(corpus, client, text):
    client.force_login(corpus)
    assert client.get("/catalog/", {"q": text}).status_code == 200
    assert client.get("/api/v1/datasets/", {"q": text}).status_code == 200
