"""The general-text probe: fixed passages of plain English prose, shipped with the package.

Encyclopaedia-style and news-style paragraphs written for this project, and openings of works
in the public domain. None is drawn from a task the harness prunes for (arithmetic prompts,
SuperGLUE premises and questions), so a pruned model's loss here says what pruning for a task
costs elsewhere. Changing a passage changes every `general_nll`: add a new probe rather than
edit this one.
"""

PASSAGES: tuple[str, ...] = (
    "The water cycle describes how water moves between the oceans, the air and the land. Heat"
    " from the sun evaporates water from seas and lakes, and plants release more through "
    "their leaves. As the moist air rises it cools, and the vapour condenses into the tiny "
    "droplets that form clouds. When the droplets grow heavy enough they fall as rain or "
    "snow. Some of that water runs off into rivers and returns to the sea, some soaks into "
    "the ground and feeds springs and wells, and some is stored for years in glaciers and ice"
    " sheets.",

    "The town council voted on Tuesday to extend the opening hours of the public library, "
    "which will now stay open until nine in the evening on weekdays. Supporters said students"
    " and shift workers had asked for the change for years. The extra hours will be paid for "
    "by a small increase in the parking fees collected in the town centre. A spokesperson for"
    " the library said the new schedule would begin next month, once additional staff have "
    "been hired and trained.",

    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such a"
    " man may be on his first entering a neighbourhood, this truth is so well fixed in the "
    "minds of the surrounding families, that he is considered the rightful property of some "
    "one or other of their daughters.",

    "Honey bees live in colonies that can hold tens of thousands of workers, a few hundred "
    "drones and a single queen. The workers are all female; young ones clean the hive and "
    "feed the larvae, while older ones fly out to collect nectar and pollen. A forager that "
    "finds a rich patch of flowers returns and performs a dance on the comb, and the angle "
    "and length of the dance tell the other bees in which direction and how far to fly.",

    "After three days of heavy rain, the river rose above its banks early on Sunday morning "
    "and flooded the lower streets of the old quarter. Residents were woken by volunteers "
    "knocking on doors, and most had moved their cars and belongings to higher ground before "
    "the water arrived. No injuries were reported. The weather service expects the rain to "
    "ease by the middle of the week, and engineers will inspect the bridges once the water "
    "has gone down.",

    "The printing press with movable type changed how ideas spread across Europe in the "
    "fifteenth century. Before it, books were copied by hand, which made them rare and "
    "costly. With metal letters that could be arranged, inked and pressed again and again, a "
    "workshop could produce hundreds of identical pages in a day. Within a few decades "
    "presses were working in many cities, and pamphlets, calendars and books reached readers "
    "who had never owned one before.",
)
