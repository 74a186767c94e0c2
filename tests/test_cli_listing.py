"""``convviz layers`` lists a container before its children (as the app's tree does); ``convviz app --help``
names itself."""
from convviz.cli import main


def test_layers_lists_a_container_before_its_children(capsys):
    assert main(["layers", "--model", "default"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert names.index("bn1") < names.index("bn1.act")
    assert names.index("blocks") < names.index("blocks.0") < names.index("blocks.0.0") < names.index("blocks.0.0.conv_dw")
    assert len(names) == len(set(names))


def test_app_help_is_named_after_the_command(capsys):
    assert main(["app", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: convviz app ")
