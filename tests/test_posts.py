"""Reading and validating the posts table: formats, encodings, cells, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from weaklabel.config import ColumnsConfig, PostsConfig
from weaklabel.errors import WeaklabelError
from weaklabel.posts import (
    detect_encoding,
    detect_format,
    iter_posts,
    normalize_image_path,
    read_posts,
    split_images,
)

TRICKY_CAPTIONS = {
    "p1": "오늘의 데일리룩 😍 #꾸안꾸 #데일리룩",
    "p2": '쿠션팩트 "인생템", 진짜 추천\n둘째 줄 https://x.co/a @friend',
    "p3": "",
}


def _csv(tmp_path: Path, text: str, name: str = "posts.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_csv_round_trips_tricky_captions(tricky_csv: Path) -> None:
    posts, images = read_posts(tricky_csv)
    assert posts["post_id"].tolist() == ["p1", "p2", "p3", "p4", "p5"]
    by_id = dict(zip(posts["post_id"], posts["caption"], strict=True))
    for pid, cap in TRICKY_CAPTIONS.items():
        assert by_id[pid] == cap
    assert posts["likes"].tolist()[:2] == [12, 1234]  # "1,234" is a count, not an error
    assert pd.isna(posts["likes"].iloc[2])  # an empty cell is unknown, not zero
    assert str(posts["likes"].dtype) == "Int64"
    assert images.to_dict("records") == [
        {"post_id": "p1", "image": "20190303/p1_1.jpg"},
        {"post_id": "p1", "image": "20190303/p1_2.jpg"},
        {"post_id": "p2", "image": "20190303/p2_1.jpg"},
        {"post_id": "p4", "image": "20190304/p4_1.png"},
    ]


def test_cp949_csv_is_detected_and_read(tmp_path: Path) -> None:
    p = _csv(tmp_path, 'post_id,caption\n1,"데일리룩, 쿠션팩트"\n2,꾸안꾸 존예\n', encoding="cp949")
    assert detect_encoding(p) == "cp949"
    posts, _ = read_posts(p)
    assert posts["caption"].tolist() == ["데일리룩, 쿠션팩트", "꾸안꾸 존예"]


def test_utf8_bom_is_stripped_from_the_first_column(tmp_path: Path) -> None:
    p = _csv(tmp_path, "\ufeffpost_id,caption\n1,데일리룩\n")
    assert detect_encoding(p) == "utf-8-sig"
    posts, _ = read_posts(p)
    assert posts["post_id"].tolist() == ["1"]
    assert posts["caption"].tolist() == ["데일리룩"]


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "posts.csv"
    p.write_bytes(b"post_id,caption\n1,ok\n2,\xff\xfe\xfa\xff\n")
    with pytest.raises(WeaklabelError, match=r"line 3 \(byte 23\) is neither UTF-8 nor CP949"):
        read_posts(p)


def test_undecodable_bytes_after_a_bom_name_the_right_line(tmp_path: Path) -> None:
    p = tmp_path / "posts.csv"
    p.write_bytes("\ufeffpost_id,caption\n".encode() + b"\xff\xfe\xfa,x\n")
    with pytest.raises(WeaklabelError, match=r"line 2 \(byte 19\)"):
        detect_encoding(p)


def test_undecodable_bytes_across_a_block_boundary(tmp_path: Path) -> None:
    p = tmp_path / "posts.csv"
    # A valid 3-byte character split by the block boundary must not be an error ...
    head = b"post_id,caption\n" + "가".encode() * 10 + b"\n"
    p.write_bytes(head)
    assert detect_encoding(p, block=17) == "utf-8"
    # ... and a bad byte in a later block is reported on its own line.
    p.write_bytes(head + b"x\n" * 5 + b"\xff\xfe\xfa\n")
    with pytest.raises(WeaklabelError, match=r"line 8 "):
        detect_encoding(p, block=7)


def test_explicit_encoding_is_used(tmp_path: Path) -> None:
    p = _csv(tmp_path, "post_id,caption\n1,립스틱\n", encoding="euc-kr")
    posts, _ = read_posts(p, PostsConfig(encoding="euc-kr"))
    assert posts["caption"].tolist() == ["립스틱"]


@pytest.mark.parametrize("fmt_suffix", [".jsonl", ".ndjson"])
def test_jsonl_table(tmp_path: Path, fmt_suffix: str) -> None:
    p = tmp_path / f"posts{fmt_suffix}"
    rows = [
        {"post_id": 1, "caption": "데일리룩 #꾸안꾸", "images": ["a/1.jpg", "./a/2.jpg"],
         "likes": 3},
        {"post_id": 2, "caption": None, "likes": "1,000", "comments": 4},
    ]
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n",
                 encoding="utf-8")
    posts, images = read_posts(p)
    assert posts["post_id"].tolist() == ["1", "2"]
    assert posts["caption"].tolist() == ["데일리룩 #꾸안꾸", ""]
    assert posts["likes"].tolist() == [3, 1000]
    assert images["image"].tolist() == ["a/1.jpg", "a/2.jpg"]


def test_jsonl_bad_line_is_named(tmp_path: Path) -> None:
    p = tmp_path / "posts.jsonl"
    p.write_text('{"post_id": 1, "caption": "a"}\n{"post_id": 2,\n', encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"posts.jsonl:2: invalid JSON"):
        read_posts(p)
    p.write_text('{"post_id": 1, "caption": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"posts.jsonl:2: expected a JSON object, got list"):
        read_posts(p)


def test_jsonl_with_a_wrong_explicit_encoding_is_a_user_error(tmp_path: Path) -> None:
    p = tmp_path / "posts.jsonl"
    p.write_text('{"post_id": 1, "caption": "립스틱"}\n', encoding="utf-8")
    with pytest.raises(WeaklabelError, match="cannot decode as ascii"):
        read_posts(p, PostsConfig(encoding="ascii"))


def test_parquet_table_with_lists_and_nullable_columns(tmp_path: Path) -> None:
    p = tmp_path / "posts.parquet"
    pd.DataFrame({
        "post_id": ["a", "b", "c"],
        "caption": pd.array(["립스틱", None, "헤어"], dtype="string"),
        "images": [["x/1.jpg"], [], None],
        "likes": pd.array([5, None, 7], dtype="Int64"),
        "created_at": pd.array(["2019-03-03", None, None], dtype="string"),
    }).to_parquet(p)
    posts, images = read_posts(p)
    assert posts["caption"].tolist() == ["립스틱", "", "헤어"]  # NA is no caption, not "<NA>"
    assert posts["likes"].iloc[0] == 5 and pd.isna(posts["likes"].iloc[1])
    assert posts["created_at"].iloc[0] == "2019-03-03"
    assert pd.isna(posts["created_at"].iloc[1])
    assert images.to_dict("records") == [{"post_id": "a", "image": "x/1.jpg"}]


def test_not_a_parquet_file(tmp_path: Path) -> None:
    p = tmp_path / "posts.parquet"
    p.write_bytes(b"PAR1 not really")
    with pytest.raises(WeaklabelError, match="not a readable Parquet file"):
        read_posts(p)


def test_missing_column_names_it_and_lists_the_table(tmp_path: Path) -> None:
    p = _csv(tmp_path, "id,text,likes\n1,hi,3\n")
    with pytest.raises(WeaklabelError) as e:
        read_posts(p)
    msg = str(e.value)
    assert "missing column 'post_id'" in msg
    assert "the table has: id, text, likes" in msg
    assert "--col post_id=NAME on weaklabel tokenize" in msg
    assert "posts.columns.post_id: NAME in the config" in msg  # build and dedup have no --col


def test_column_mapping(tmp_path: Path) -> None:
    p = _csv(tmp_path, "id,text,hearts,pics\n1,립스틱,3,a.jpg|b.jpg\n")
    cfg = PostsConfig(columns=ColumnsConfig(post_id="id", caption="text", likes="hearts",
                                            images="pics"))
    posts, images = read_posts(p, cfg)
    assert posts.loc[0, "caption"] == "립스틱" and posts.loc[0, "likes"] == 3
    assert images["image"].tolist() == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize("text, match", [
    ("", "the file is empty"),
    ("post_id,caption\n", "the posts table has no rows"),
])
def test_empty_tables(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(WeaklabelError, match=match):
        read_posts(_csv(tmp_path, text))


def test_duplicate_post_id_names_the_row(tmp_path: Path) -> None:
    p = _csv(tmp_path, "post_id,caption\na,x\nb,y\na,z\n")
    with pytest.raises(WeaklabelError, match=r"row 3: post_id 'a' appears twice"):
        read_posts(p)


def test_duplicate_post_id_across_chunks_names_the_row(tmp_path: Path) -> None:
    ids = [f"p{i}" for i in range(9)] + ["p4"]
    p = _csv(tmp_path, "post_id,caption\n" + "".join(f"{i},c\n" for i in ids))
    with pytest.raises(WeaklabelError, match=r"row 10: post_id 'p4' appears twice"):
        list(iter_posts(p, PostsConfig(), chunk_size=3))


def test_row_numbers_count_across_chunks(tmp_path: Path) -> None:
    rows = "".join(f"p{i},c,{i}\n" for i in range(7)) + "p7,c,lots\n"
    p = _csv(tmp_path, "post_id,caption,likes\n" + rows)
    with pytest.raises(WeaklabelError, match=r"row 8: likes must be a whole number, got 'lots'"):
        list(iter_posts(p, PostsConfig(), chunk_size=3))


def test_empty_post_id_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match=r"row 2: post_id is empty"):
        read_posts(_csv(tmp_path, "post_id,caption\na,x\n ,y\n"))


@pytest.mark.parametrize("cell, expected", [
    ("12", 12), (" 1,234 ", 1234), ("+3", 3), ("7.0", 7), ("", None), ("null", None),
])
def test_counts(tmp_path: Path, cell: str, expected: int | None) -> None:
    posts, _ = read_posts(_csv(tmp_path, f'post_id,caption,comments\na,x,"{cell}"\n'))
    got = posts["comments"].iloc[0]
    assert (pd.isna(got) and expected is None) or got == expected


@pytest.mark.parametrize("cell, match", [
    ("many", "row 1: likes must be a whole number, got 'many'"),
    ("2.5", "row 1: likes must be a whole number, got '2.5'"),
    ("1,23", "row 1: likes must be a whole number"),
])
def test_non_numeric_likes_name_row_and_column(tmp_path: Path, cell: str, match: str) -> None:
    with pytest.raises(WeaklabelError, match=match):
        read_posts(_csv(tmp_path, f'post_id,caption,likes\na,x,"{cell}"\n'))


def test_negative_count_from_json(tmp_path: Path) -> None:
    p = tmp_path / "posts.jsonl"
    p.write_text('{"post_id": "a", "caption": "x", "likes": -2}\n', encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"row 1: likes is negative \(-2\)"):
        read_posts(p)


@pytest.mark.parametrize("name, text", [
    ("posts.csv", 'post_id,caption,likes\na,x,1\nb,y,99999999999999999999999\n'),
    ("posts.jsonl", '{"post_id": "a", "caption": "x", "likes": 1}\n'
                    '{"post_id": "b", "caption": "y", "likes": 99999999999999999999999}\n'),
])
def test_count_too_large_for_int64_names_the_row(tmp_path: Path, name: str, text: str) -> None:
    # pandas overflowed with a traceback on a count past int64.
    with pytest.raises(WeaklabelError, match=r"row 2: likes is 99999999999999999999999, more "
                                              r"than a count can be"):
        read_posts(_csv(tmp_path, text, name=name))
    ok, _ = read_posts(_csv(tmp_path, 'post_id,caption,likes\na,x,9223372036854775807\n'))
    assert int(ok["likes"].iloc[0]) == 2**63 - 1


@pytest.mark.parametrize("raw, match", [
    ("../x.jpg", "escapes the image root"),
    ("a/../../x.jpg", "escapes the image root"),
    ("..", "escapes the image root"),
    ("/etc/passwd", "is absolute"),
    ("C:\\pics\\x.jpg", "is absolute"),
    ("C:\\\\pics\\\\x.jpg", "is absolute"),  # doubled backslashes: not a URL
    ("c://x.jpg", "is absolute"),
    # a URL was folded into the relative path 'https:/cdn.example.com/a.jpg'
    ("https://cdn.example.com/a.jpg", "is a URL; download the images"),
    ("s3://bucket/a.jpg", "is a URL"),
])
def test_image_path_outside_the_root_is_rejected(raw: str, match: str) -> None:
    with pytest.raises(WeaklabelError, match=rf"row 4: image path .* {match}"):
        normalize_image_path(raw, row=4, where=Path("posts.csv"))


@pytest.mark.parametrize("raw, expected", [
    ("a/b.jpg", "a/b.jpg"), ("./a//b.jpg", "a/b.jpg"), ("a\\b.jpg", "a/b.jpg"),
    ("a/x/../b.jpg", "a/b.jpg"), (" a.jpg ", "a.jpg"),
])
def test_image_paths_are_normalised(raw: str, expected: str) -> None:
    assert normalize_image_path(raw, row=1, where=Path("t")) == expected


def test_escaping_image_path_in_a_table_names_the_row(tmp_path: Path) -> None:
    p = _csv(tmp_path, "post_id,caption,images\na,x,ok.jpg\nb,y,ok.jpg|../x.jpg\n")
    with pytest.raises(WeaklabelError, match=r"row 2: image path '../x.jpg' escapes"):
        read_posts(p)


def test_split_images_forms() -> None:
    w = Path("t")
    assert split_images('["a.jpg", "b.jpg"]', "|", row=1, where=w) == ["a.jpg", "b.jpg"]
    assert split_images("a.jpg;b.jpg", ";", row=1, where=w) == ["a.jpg", "b.jpg"]
    assert split_images(["a.jpg", None], "|", row=1, where=w) == ["a.jpg"]
    assert split_images(float("nan"), "|", row=1, where=w) == []
    assert split_images(pd.NA, "|", row=1, where=w) == []
    with pytest.raises(WeaklabelError, match="row 1: images cell looks like a JSON list"):
        split_images("[a.jpg", "|", row=1, where=w)


def test_repeated_image_of_a_post_is_kept_once(tmp_path: Path) -> None:
    _, images = read_posts(_csv(tmp_path, "post_id,caption,images\na,x,1.jpg|./1.jpg|2.jpg\n"))
    assert images["image"].tolist() == ["1.jpg", "2.jpg"]


def test_link_table(tmp_path: Path) -> None:
    posts_p = _csv(tmp_path, "post_id,caption,images\na,x,ignored.jpg\nb,y,\n")
    links = _csv(tmp_path, "post_id,image\na,1.jpg\na,1.jpg\nb,d/2.jpg\nb,\n", name="links.csv")
    posts, images = read_posts(posts_p, PostsConfig(links=str(links)))
    assert len(posts) == 2
    assert images.to_dict("records") == [{"post_id": "a", "image": "1.jpg"},
                                         {"post_id": "b", "image": "d/2.jpg"}]
    bad = _csv(tmp_path, "post_id,image\nzz,1.jpg\n", name="bad_links.csv")
    with pytest.raises(WeaklabelError, match=r"row 1: post_id 'zz' is not in the posts table"):
        read_posts(posts_p, PostsConfig(links=str(bad)))


@pytest.mark.parametrize("sep, encoding", [(";", "utf-8"), ("\t", "utf-16-le")])
def test_a_link_table_is_read_by_its_header_like_the_posts(tmp_path: Path, sep: str,
                                                           encoding: str) -> None:
    # a ';' link table was "missing column 'post_id'; a link table is post_id,image"
    posts_p = _csv(tmp_path, "post_id,caption\na,x\n")
    links = _csv(tmp_path, f"post_id{sep}image\na{sep}사진/1.jpg\n", name="links.csv",
                 encoding=encoding)
    _, images = read_posts(posts_p, PostsConfig(links=str(links)))
    assert images.to_dict("records") == [{"post_id": "a", "image": "사진/1.jpg"}]


def test_a_json_array_is_read_and_other_json_shapes_are_named(tmp_path: Path) -> None:
    # most tools save a .json as one array: it was "invalid JSON (Expecting value)"
    arr = _csv(tmp_path, '[{"post_id": "007", "caption": "립스틱"},\n {"post_id": "2", '
                         '"caption": "틴트"}]\n', name="posts.json", encoding="utf-8-sig")
    posts, _ = read_posts(arr)
    assert posts["post_id"].tolist() == ["007", "2"]
    assert posts["caption"].tolist() == ["립스틱", "틴트"]
    cases = {
        '{"posts": [{"post_id": "1", "caption": "x"}]}\n':
            r"one object holding the posts under 'posts'; give the list, one post per "
            r"line: jq -c '.posts\[\]' FILE > posts.jsonl",
        '{\n  "post_id": "1",\n  "caption": "x"\n}\n':
            r":1: invalid JSON .*one object spans several lines \(pretty-printed JSON\)",
        '[{"post_id": "1", "caption": "x"}, 5]':
            r"item 2 of the array is a int, not an object",
        '[{"post_id": "1", "caption": "x"},\n]':
            r":2: invalid JSON .*a .json table is one array of objects or one object per",
    }
    for text, message in cases.items():
        with pytest.raises(WeaklabelError, match=message):
            read_posts(_csv(tmp_path, text, name="bad.json"))


def test_binary_and_list_cells_of_a_parquet_table_are_text(tmp_path: Path) -> None:
    # a binary caption column was tokenized as its repr "b'\\xeb\\xa6…'", a list as
    # "['a' 'b']"
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "posts.parquet"
    pq.write_table(pa.table({
        "post_id": pa.array([b"007", b"8"], pa.binary()),
        "caption": pa.array(["립스틱 좋아".encode(), "틴트".encode()], pa.binary()),
        "tags": [["a"], ["b"]]}), p)
    posts, _ = read_posts(p)
    assert posts["post_id"].tolist() == ["007", "8"]
    assert posts["caption"].tolist() == ["립스틱 좋아", "틴트"]
    pq.write_table(pa.table({"post_id": ["1"], "caption": [["데일리룩", "립스틱"]]}), p)
    assert read_posts(p)[0]["caption"].tolist() == ["데일리룩\n립스틱"]
    pq.write_table(pa.table({"post_id": ["1"], "caption": pa.array([b"\xff\xfe"])}), p)
    with pytest.raises(WeaklabelError, match=r"posts.parquet: row 1: caption is bytes that "
                                              r"are not UTF-8 text"):
        read_posts(p)


def test_a_header_repeated_inside_the_table_is_named(tmp_path: Path) -> None:
    # `cat day1.csv day2.csv`: the second header was a post 'post_id' captioned 'caption'
    p = _csv(tmp_path, "post_id,caption\n1,a\npost_id,caption\n2,b\n")
    with pytest.raises(WeaklabelError, match=r"posts.csv: row 2 repeats the header "
                                              r"\(post_id, caption, …\): tables concatenated"):
        read_posts(p)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match="does not exist"):
        read_posts(tmp_path / "nope.csv")
    with pytest.raises(WeaklabelError, match="is a folder"):
        read_posts(tmp_path)


def test_format_detection() -> None:
    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.tsv")) == "tsv"
    assert detect_format(Path("dump.2019.jsonl")) == "jsonl"
    assert detect_format(Path("a.pq")) == "parquet"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(WeaklabelError, match="cannot tell the table format"):
        detect_format(Path("a.txt"))
    with pytest.raises(WeaklabelError, match="unknown posts format 'xls'"):
        detect_format(Path("a.csv"), "xls")


def test_tsv_table(tmp_path: Path) -> None:
    p = _csv(tmp_path, "post_id\tcaption\n1\t립스틱, 틴트\n", name="posts.tsv")
    posts, _ = read_posts(p)
    assert posts["caption"].tolist() == ["립스틱, 틴트"]


def test_malformed_csv_is_a_user_error(tmp_path: Path) -> None:
    p = _csv(tmp_path, 'post_id,caption\n1,"unclosed\n2,x\n')
    with pytest.raises(WeaklabelError, match="malformed CSV"):
        read_posts(p)


def test_header_only_table_is_checked_then_reported_empty(tmp_path: Path) -> None:
    with pytest.raises(WeaklabelError, match="missing column 'caption'"):
        read_posts(_csv(tmp_path, "post_id,text\n"))
    chunks = iter_posts(_csv(tmp_path, "post_id,caption\n", name="h.csv"), PostsConfig())
    with pytest.raises(WeaklabelError, match="has no rows"):
        next(chunks)  # no empty chunk comes out first


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_separated_otherwise_is_read_by_its_header(tmp_path: Path, sep: str) -> None:
    # Excel in many locales saves ';'; a .csv of tabs was "malformed CSV … line 21".
    p = _csv(tmp_path, f'post_id{sep}caption{sep}likes\n1{sep}"립스틱, 틴트"{sep}3\n2{sep}x{sep}\n')
    posts, _ = read_posts(p)
    assert posts["caption"].tolist() == ["립스틱, 틴트", "x"]
    assert posts["likes"].iloc[0] == 3


@pytest.mark.parametrize("name, sep", [("posts.tsv", ","), ("posts.tsv", ";"),
                                       ("posts.csv", "\t")])
def test_a_table_separated_unlike_its_name_is_read_by_its_header(
        tmp_path: Path, name: str, sep: str) -> None:
    # a .tsv of commas was "missing column 'post_id' … the table has: post_id,caption"
    p = _csv(tmp_path, f'post_id{sep}caption\n1{sep}"립스틱{sep} 틴트"\n', name=name)
    posts, _ = read_posts(p)
    assert posts["caption"].tolist() == [f"립스틱{sep} 틴트"]


def test_a_column_off_by_spaces_or_case_is_read_unless_two_could_be_it(tmp_path: Path
                                                                       ) -> None:
    # 'post_id, caption, likes' typed by hand was "missing column 'caption'"
    posts, _ = read_posts(_csv(tmp_path, "post_id, caption, likes\n1, 립스틱, 3\n"))
    assert posts["caption"].str.strip().tolist() == ["립스틱"]
    assert posts["likes"].tolist() == [3]
    posts, _ = read_posts(_csv(tmp_path, "Post_ID,CAPTION\n007,틴트\n", name="b.csv"))
    assert posts["post_id"].tolist() == ["007"] and posts["caption"].tolist() == ["틴트"]
    with pytest.raises(WeaklabelError, match=r"missing column 'caption' \(caption\); the "
                                              r"table has: post_id, Caption, 'caption '"):
        read_posts(_csv(tmp_path, "post_id,Caption,caption \n1,a,b\n", name="c.csv"))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_excels_sep_line_names_the_separator(tmp_path: Path, encoding: str) -> None:
    # 'sep=;' (Excel's hint) was read as the header: "the table has: sep=, Unnamed: 1"
    p = _csv(tmp_path, "sep=;\npost_id;caption;likes\n1;립스틱, 틴트;3\n", encoding=encoding)
    posts, _ = read_posts(p)
    assert posts["caption"].tolist() == ["립스틱, 틴트"] and posts["likes"].tolist() == [3]


def test_a_comma_header_keeps_commas_whatever_the_captions_hold(tmp_path: Path) -> None:
    posts, _ = read_posts(_csv(tmp_path, 'post_id,caption\n1,"a;b\tc|d"\n'))
    assert posts["caption"].tolist() == ["a;b\tc|d"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_detected(tmp_path: Path, encoding: str) -> None:
    # Excel's "Unicode text" and Notepad's "Unicode": the BOM says what it is.
    text = "post_id\tcaption\n1\t데일리룩 립스틱\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    p = tmp_path / "posts.csv"
    p.write_bytes(data)
    posts, _ = read_posts(p)
    assert posts["post_id"].tolist() == ["1"]
    assert posts["caption"].tolist() == ["데일리룩 립스틱"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32", "utf-32-be-bom"])
def test_utf16_without_and_utf32_with_a_byte_order_mark_are_decoded(
        tmp_path: Path, encoding: str) -> None:
    # UTF-16 without a BOM was "neither UTF-8 nor CP949" (or, all ASCII, columns of
    # NULs); UTF-32-LE's BOM starts like UTF-16-LE's and gave '\x00p\x00o…' columns.
    text = "post_id,caption\n007,데일리룩 립스틱\n"
    data = (b"\x00\x00\xfe\xff" + text.encode("utf-32-be") if encoding == "utf-32-be-bom"
            else text.encode(encoding))
    p = tmp_path / "posts.csv"
    p.write_bytes(data)
    posts, _ = read_posts(p)
    assert posts["post_id"].tolist() == ["007"]
    assert posts["caption"].tolist() == ["데일리룩 립스틱"]


def test_a_bomless_utf16_header_is_told_by_its_columns_or_named(tmp_path: Path) -> None:
    kr = tmp_path / "kr.csv"  # Hangul column names hold no NUL: the mapped columns prove it
    kr.write_bytes("게시물,본문\n1,립스틱\n".encode("utf-16-le"))
    cols = ColumnsConfig(post_id="게시물", caption="본문")
    posts, _ = read_posts(kr, PostsConfig(columns=cols))
    assert posts["caption"].tolist() == ["립스틱"]
    jl = tmp_path / "posts.jsonl"
    jl.write_bytes('{"post_id": "1", "caption": "립스틱"}\n'.encode("utf-16-be"))
    assert read_posts(jl)[0]["caption"].tolist() == ["립스틱"]
    nul = tmp_path / "nul.csv"  # NULs that no UTF-16/32 reading makes text of
    nul.write_bytes(b"\x00" * 40 + b"\n")
    with pytest.raises(WeaklabelError, match=r"nul.csv: the header is full of NUL bytes.*"
                                              r"re-save the file as UTF-8"):
        read_posts(nul)


def test_a_nul_in_a_utf8_caption_keeps_the_file_utf8(tmp_path: Path) -> None:
    p = _csv(tmp_path, "post_id,caption\n1,립스\x00틱\n")
    assert detect_encoding(p) == "utf-8"


def test_a_workbook_or_parquet_renamed_csv_is_named_as_such(tmp_path: Path) -> None:
    import zipfile

    xlsx = tmp_path / "posts.csv"
    with zipfile.ZipFile(xlsx, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(WeaklabelError, match=r"posts.csv: this is a zip archive \(an Excel "
                                              r"\.xlsx workbook\?\).*Save As → 'CSV UTF-8'"):
        read_posts(xlsx)
    pq_as_csv = tmp_path / "dump.csv"
    pd.DataFrame({"post_id": ["1"], "caption": ["x"]}).to_parquet(pq_as_csv)
    with pytest.raises(WeaklabelError, match="this is a Parquet file.*--format parquet"):
        read_posts(pq_as_csv)
    posts, _ = read_posts(pq_as_csv, PostsConfig(format="parquet"))
    assert posts["caption"].tolist() == ["x"]


def test_a_column_named_twice_in_the_header_is_an_error(tmp_path: Path) -> None:
    # pandas read the first 'caption' and renamed the second 'caption.1' without a word.
    p = _csv(tmp_path, "post_id,caption,likes,caption\n1,a,2,b\n")
    with pytest.raises(WeaklabelError, match=r"posts.csv: column 'caption' appears twice in "
                                              r"the header; rename or drop one"):
        read_posts(p)


def test_a_semicolon_header_with_a_quoted_comma_is_read_by_its_columns(tmp_path: Path
                                                                       ) -> None:
    # 'which character does the header hold' kept ',' here: missing column 'post_id'
    p = _csv(tmp_path, '\npost_id;"caption, text"\n1;립스틱\n',)
    posts, _ = read_posts(p, PostsConfig(columns=ColumnsConfig(caption="caption, text")))
    assert posts["caption"].tolist() == ["립스틱"]


def test_a_column_weaklabel_does_not_read_may_be_named_twice(tmp_path: Path) -> None:
    # a 'memo' exported twice loaded before the duplicate check; it still does
    posts, _ = read_posts(_csv(tmp_path, "post_id,caption,memo,memo\n1,a,x,y\n"))
    assert posts["caption"].tolist() == ["a"]
