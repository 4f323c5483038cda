"""Config mistakes get one clear line naming the key, in every section."""

from __future__ import annotations

import pytest
from beets.ui import UserError

from tests.beetsplug.test_plugin import HIGH, McbrHelper


class TestConfigErrors(McbrHelper):
    def reload(self, **section: object) -> None:
        self.unload_plugins()
        for key, value in section.items():
            self.config["mcbr"][key] = value
        self.load_plugins()

    def test_a_bad_auto_value_is_an_error_not_a_missing_command(self) -> None:
        self.reload(auto="maybe")
        with pytest.raises(UserError, match=r"^mcbr.auto: expected yes or no, got 'maybe'$"):
            self.run_command("similar", "title:x")

    def test_a_bad_auto_value_stops_an_import(self) -> None:
        self.reload(auto="maybe")
        self.make_track("hi", freq=HIGH)
        with pytest.raises(UserError, match="mcbr.auto"):
            self.import_singletons()

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("similiar", {"count": 3}, r"^mcbr: unknown key 'similiar' \(did you mean 'similar'\?\)$"),
            ("similar", {"cont": 3}, r"^mcbr.similar: unknown key 'cont' \(did you mean 'count'\?\)$"),
            (
                "genre",
                {"treshold": 0.5},
                r"^mcbr.genre: unknown key 'treshold' \(did you mean 'threshold'\?\)$",
            ),
            ("train", {"epoch": 3}, r"^mcbr.train: unknown key 'epoch' \(did you mean 'epochs'\?\)$"),
            ("index", {"trees": 3}, r"^mcbr.index: unknown key 'trees' \(did you mean 'n_trees'\?\)$"),
        ],
    )
    def test_unknown_keys_name_the_nearest_valid_key(self, key: str, value: object, message: str) -> None:
        self.reload(**{key: value})
        self.make_track("hi", freq=HIGH)
        with pytest.raises(UserError, match=message):
            self.run_command("mcbr")

    def test_canonical_holds_the_users_own_names(self) -> None:
        self.reload(renames={"Prog": "Progressive Rock"}, aliases={"prog rock": ["prog"]})
        self.make_track("hi", freq=HIGH)
        self.import_singletons()
        assert "analysed" in self.run_with_output("mcbr", "-f")


class TestMoodField(McbrHelper):
    def test_an_item_without_mood_formats_as_empty(self) -> None:
        self.make_track("hi", freq=HIGH)
        self.make_track("none", freq=HIGH)
        self.config["mcbr"]["mood"] = {"count": 0}  # moods off
        self.import_singletons()
        out = self.run_with_output("ls", "-f", "[$title|$mood]")
        assert sorted(out.split()) == ["[hi|]", "[none|]"]
        self.run_command("modify", "-y", "title:hi", "mood=Happy")
        out = self.run_with_output("ls", "-f", "[$title|$mood]", "mood:Happy")
        assert out.split() == ["[hi|Happy]"]
        self.run_command("write", "title:hi")
        assert self.file_tags("hi").mood == "Happy"
