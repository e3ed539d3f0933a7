import doctest
import re

import pytest

import mnemodyn_hf.configuration_mnemodyn
import mnemodyn_hf.modeling_heads
import mnemodyn_hf.modeling_mnemodyn


class _MarkdownDocTestParser(doctest.DocTestParser):
    """Docstrings wrap examples in Markdown fences (transformers style); drop the fences before parsing."""

    def parse(self, string, name="<string>"):
        return super().parse(re.sub(r"^\s*```\w*\s*$", "", string, flags=re.MULTILINE), name)


@pytest.mark.parametrize(
    "module", [mnemodyn_hf.configuration_mnemodyn, mnemodyn_hf.modeling_mnemodyn, mnemodyn_hf.modeling_heads]
)
def test_docstring_examples_run(module):
    """The `>>>` examples in the public docstrings are code users copy: they must run as written."""
    finder = doctest.DocTestFinder(parser=_MarkdownDocTestParser())
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [test for test in finder.find(module) if test.examples]
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0 and results.failed == 0
