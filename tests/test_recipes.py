"""Recipe names (harness/recipes.py): a variant's name gives back its recipe and settings."""






def test_variant_names_give_back_their_settings():
    from harness.recipes import recipe_name, variant_name, variant_settings

    settings = {"objective": "margin", "verify_multiple": 1.5, "budget_grid": (0.1, 0.2)}
    name = variant_name("eigen-verified", settings)
    assert name == "eigen-verified[objective=margin;verify_multiple=1.5;budget_grid=0.1,0.2]"
    assert recipe_name(name) == "eigen-verified"
    assert variant_settings(name) == {"objective": "margin", "verify_multiple": "1.5",
                                      "budget_grid": "0.1,0.2"}
    assert variant_settings("eigen") == {}
