import importlib

import pytest

import campaign_pipeline.detection as detection
import campaign_pipeline.report as report


@pytest.mark.parametrize("package", [detection, report])
def test_every_public_name_is_the_one_its_module_defines(package):
    for name in package.__all__:
        module = importlib.import_module(f"{package.__name__}.{package._EXPORTS[name]}")
        assert getattr(package, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import():
    assert not hasattr(detection, "detect_everything")
    with pytest.raises(ImportError, match="detect_everything"):
        exec("from campaign_pipeline.detection import detect_everything")
    # a submodule is not an export: the import system finds it after the AttributeError
    from campaign_pipeline.report import charts

    assert charts.__name__ == "campaign_pipeline.report.charts"
