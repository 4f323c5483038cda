"""Zero-shot maps for ``bench/tag_sources.py``: each tagger's own tags onto our genre labels, and its mood
tags onto arousal, valence, quadrants and MIREX clusters (rows (c) and (d) of docs/results.md, "Tags: sources and
heads")."""

from __future__ import annotations

# -- zero-shot maps: each tagger's own tags -> our genre labels, and mood tags -> arousal/valence/quadrants ----------

#: tagger tag -> genre labels of ``mcbr_core.training.datasets.tags.GENRES`` (pop and rock apart)
ZERO_GENRES: dict[str, dict[str, tuple[str, ...]]] = {
    "as-mn04": {
        "pop": ("Pop music", "Independent music"),
        "rock": ("Rock music", "Heavy metal", "Punk rock", "Grunge", "Progressive rock", "Rock and roll",
                 "Psychedelic rock"),
        "r&b": ("Rhythm and blues", "Soul music", "Funk", "Disco"), "hip hop": ("Hip hop music",),
        "reggae": ("Reggae", "Ska"), "country": ("Country", "Bluegrass"), "jazz": ("Jazz", "Swing music"),
        "folk": ("Folk music",),
        "world music": ("Middle Eastern music", "Music of Africa", "Afrobeat", "Music of Asia", "Carnatic music",
                        "Music of Bollywood", "Traditional music"),
        "latin": ("Music of Latin America", "Salsa music", "Flamenco"), "classical": ("Classical music", "Opera"),
        "electronic": ("Electronic music", "House music", "Techno", "Dubstep", "Drum and bass", "Electronica",
                       "Electronic dance music", "Trance music"),
        "new age": ("New-age music", "Ambient music"), "blues": ("Blues",), "kids music": ("Music for children",),
        "vocal": ("Vocal music", "A capella"), "gospel": ("Christian music", "Gospel music"),
        "soundtrack": ("Soundtrack music", "Video game music"), "christmas music": ("Christmas music",),
    },
    "jamendo-fcn": {
        "pop": ("pop", "instrumental pop", "pop folk"), "rock": ("rock", "pop rock", "alternative", "indie", "metal"),
        "electronic": ("electronic", "dance", "house", "techno", "trance", "trip hop", "downtempo"),
        "jazz": ("jazz",), "classical": ("classical", "orchestral"), "folk": ("folk", "pop folk"), "r&b": ("funk",),
        "hip hop": ("hip hop",), "reggae": ("reggae",), "world music": ("world",), "new age": ("new age", "ambient"),
        "soundtrack": ("soundtrack", "film"), "easy listening": ("easy listening", "lounge"),
        "avant-garde": ("experimental",),
    },
    "msd-musicnn": {
        "pop": ("pop", "indie pop"), "rock": ("rock", "alternative", "indie", "alternative rock", "metal", "classic rock",
                                               "indie rock", "punk", "hard rock", "heavy metal", "Progressive rock"),
        "electronic": ("electronic", "dance", "electronica", "electro", "House"), "jazz": ("jazz",),
        "r&b": ("soul", "funk", "rnb"), "folk": ("folk",), "blues": ("blues",), "hip hop": ("Hip-Hop",),
        "country": ("country",), "easy listening": ("easy listening",), "avant-garde": ("experimental",),
        "new age": ("ambient",),
    },
}  # fmt: skip
#: tagger tag -> +1 (high arousal / positive valence) or -1; and quadrant -> tags (Q2 has genre proxies where no mood tag names it)
ZERO_AFFECT: dict[str, dict[str, dict[str, float]]] = {
    "as-mn04": {
        "arousal": {"Happy music": 1, "Exciting music": 1, "Angry music": 1, "Scary music": 1, "Sad music": -1,
                    "Tender music": -1},
        "valence": {"Happy music": 1, "Tender music": 1, "Funny music": 1, "Sad music": -1, "Angry music": -1,
                    "Scary music": -1},
    },
    "jamendo-fcn": {
        "arousal": {"energetic": 1, "happy": 1, "metal": 1, "relaxing": -1, "chillout": -1, "easy listening": -1,
                    "atmospheric": -1},
        "valence": {"happy": 1, "easy listening": 1, "relaxing": 1, "emotional": -1, "metal": -1},
    },
    "msd-musicnn": {
        "arousal": {"party": 1, "happy": 1, "metal": 1, "heavy metal": 1, "hard rock": 1, "punk": 1, "Mellow": -1,
                    "chill": -1, "chillout": -1, "sad": -1, "easy listening": -1},
        "valence": {"happy": 1, "party": 1, "catchy": 1, "sexy": 1, "sad": -1, "metal": -1, "heavy metal": -1},
    },
}  # fmt: skip
ZERO_QUADRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "as-mn04": {"Q1": ("Happy music", "Exciting music"), "Q2": ("Angry music", "Scary music"), "Q3": ("Sad music",),
                "Q4": ("Tender music",)},
    "jamendo-fcn": {"Q1": ("happy", "energetic"), "Q2": ("metal",), "Q3": ("emotional",),
                    "Q4": ("relaxing", "chillout")},
    "msd-musicnn": {"Q1": ("happy", "party", "catchy"), "Q2": ("metal", "heavy metal", "hard rock", "punk"),
                    "Q3": ("sad",), "Q4": ("Mellow", "chill", "chillout", "easy listening", "beautiful")},
}  # fmt: skip
ZERO_CLUSTERS: dict[str, dict[str, tuple[str, ...]]] = {
    "as-mn04": {"C1": ("Exciting music",), "C2": ("Happy music",), "C3": ("Sad music", "Tender music"),
                "C4": ("Funny music",), "C5": ("Angry music", "Scary music")},
    "jamendo-fcn": {"C1": ("energetic",), "C2": ("happy",), "C3": ("emotional",), "C5": ("metal",)},
    "msd-musicnn": {"C1": ("party",), "C2": ("happy", "catchy"), "C3": ("sad", "Mellow"),
                    "C5": ("metal", "heavy metal", "hard rock", "punk")},
}  # fmt: skip

for _zero in (
    ZERO_GENRES,
    ZERO_AFFECT,
    ZERO_QUADRANTS,
    ZERO_CLUSTERS,
):  # Won's msd-fcn has msd-musicnn's 50 tags
    _zero["msd-fcn"] = _zero["msd-musicnn"]
