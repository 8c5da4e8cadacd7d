"""The near-duplicate search of the book's ch07/02 find-near-duplicates.py, on scikit-learn, for
test/data-near-duplicates.test.ts. Written for this project (the book's procedure, our code): the
book's preprocessing (lowercase, `re.sub(r"[^\\w\\s]", "", text)`), scikit-learn's
TfidfVectorizer(analyzer="char", ngram_range=(1, 3)) with its defaults (smooth idf, l2 norm), and
cosine_similarity. One deliberate difference from the book's script: each text keeps the index of
its entry (the book's indexes into the list without the empty texts, which picks wrong entries).

    python near_duplicates_reference.py THRESHOLD FILE.json [FILE.json ...]

prints one JSON object per file and line: {"sklearn": version, "fields": [{"field", "rows" (the
entry index of each non-empty text), "matrix" (the full cosine similarity matrix of those texts, for files of up to 400 entries),
"pairs" ([first, second, similarity] above THRESHOLD, texts of one character or less skipped)}],
"report": the book's printout for all fields}.

    python near_duplicates_reference.py --remove THRESHOLD FILE.json

prints the entries left after the book's removal: field by field, the second entry of each pair
found in "input" or "output" dropped before the next field is searched.
"""
import json
import re
import sys

from sklearn import __version__ as sklearn_version
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity


# the full similarity matrix only for files this small (the chapter's 1,100 entries would make it 1.2M values a field)
MATRIX_UP_TO = 400


def preprocess(text):
    return re.sub(r"[^\w\s]", "", text.lower())


def search_field(entries, field, threshold):
    rows = [i for i, entry in enumerate(entries) if entry[field]]
    result = {"field": field, "rows": rows, "matrix": [], "pairs": []}
    if not rows:
        return result
    try:
        vectors = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)).fit_transform([preprocess(entries[i][field]) for i in rows])
    except ValueError as e:  # "empty vocabulary": no text has a character left after preprocessing
        result["refused"] = str(e)
        return result
    matrix = cosine_similarity(vectors)
    if len(entries) <= MATRIX_UP_TO:
        result["matrix"] = matrix.tolist()
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            first, second = rows[a], rows[b]
            if matrix[a, b] > threshold and len(entries[first][field]) > 1 and len(entries[second][field]) > 1:
                result["pairs"].append([first, second, float(matrix[a, b])])
    return result


def report(entries, searches):
    out = []
    for search in searches:
        field = search["field"]
        out.append(f"\n\n{'=' * 50}\nSearching '{field}' for duplicates ...\n{'=' * 50}\n")
        if not search["pairs"]:
            out.append("No duplicates found\n")
        for first, second, similarity in search["pairs"]:
            out.append(f"Duplicate pair found with similarity {similarity:.2f}:\n1. {entries[first][field]}\n2. {entries[second][field]}\n\n")
    return "".join(out)


def remove(threshold, path):
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    for field in list(entries[0].keys()):
        search = search_field(entries, field, threshold)
        if field in ("input", "output"):
            drop = {second for _, second, _ in search["pairs"]}
            entries = [entry for i, entry in enumerate(entries) if i not in drop]
    print(json.dumps(entries))


def main():
    if sys.argv[1] == "--remove":
        return remove(float(sys.argv[2]), sys.argv[3])
    threshold = float(sys.argv[1])
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        searches = [search_field(entries, field, threshold) for field in entries[0].keys()]
        print(json.dumps({"sklearn": sklearn_version, "fields": searches, "report": report(entries, searches)}))


if __name__ == "__main__":
    main()
