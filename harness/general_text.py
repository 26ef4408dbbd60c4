"""The general-text probe: fixed passages of plain English prose, shipped with the package.

Encyclopaedia-style and news-style paragraphs written for this project, and openings of works
in the public domain. None is drawn from a task the harness prunes for (arithmetic prompts,
SuperGLUE premises and questions), so a pruned model's loss here says what pruning for a task
costs elsewhere. Changing a passage changes every `general_nll`: add a new probe rather than
edit this one.
"""

PASSAGES: tuple[str, ...] = (
    "The water cycle describes how water moves between the oceans, the air and the land. Heat "
    "from the sun evaporates water from seas and lakes, and plants release more through their "
    "leaves. As the moist air rises it cools, and the vapour condenses into the tiny droplets "
    "that form clouds. When the droplets grow heavy enough they fall as rain or snow. Some of "
    "that water runs off into rivers and returns to the sea, some soaks into the ground and "
    "feeds springs and wells, and some is stored for years in glaciers and ice sheets.",

    "The town council voted on Tuesday to extend the opening hours of the public library, "
    "which will now stay open until nine in the evening on weekdays. Supporters said students "
    "and shift workers had asked for the change for years. The extra hours will be paid for by "
    "a small increase in the parking fees collected in the town centre. A spokesperson for the "
    "library said the new schedule would begin next month, once additional staff have been "
    "hired and trained.",

    "Bread is one of the oldest prepared foods. Early farmers ground wild grains between stones, "
    "mixed the flour with water and baked the paste on hot rocks. Leavened bread appeared when "
    "bakers noticed that dough left to stand would rise, because yeasts in the air fed on its "
    "sugars and released gas. Today most bread is made with cultivated yeast, but sourdough, "
    "which relies on a starter of wild yeasts and bacteria kept alive from one batch to the "
    "next, has become popular again.",

    "A lighthouse is a tower built to guide ships at night and in bad weather. Its lamp sits "
    "at the top behind a large lens that gathers the light into a narrow beam, which can be "
    "seen many miles out at sea. Each lighthouse has its own pattern of flashes, so sailors can "
    "tell one from another and work out where they are. Most lighthouses are now automatic, "
    "and the keepers who once lived beside them and tended the lamps have gone.",

    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife. However little known the feelings or views of such a man may "
    "be on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
    "surrounding families, that he is considered the rightful property of some one or other of "
    "their daughters.",

    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money "
    "in my purse, and nothing particular to interest me on shore, I thought I would sail about "
    "a little and see the watery part of the world. It is a way I have of driving off the "
    "spleen and regulating the circulation.",

    "Honey bees live in colonies that can hold tens of thousands of workers, a few hundred "
    "drones and a single queen. The workers are all female; young ones clean the hive and feed "
    "the larvae, while older ones fly out to collect nectar and pollen. A forager that finds a "
    "rich patch of flowers returns and performs a dance on the comb, and the angle and length "
    "of the dance tell the other bees in which direction and how far to fly.",

    "After three days of heavy rain, the river rose above its banks early on Sunday morning and "
    "flooded the lower streets of the old quarter. Residents were woken by volunteers knocking "
    "on doors, and most had moved their cars and belongings to higher ground before the water "
    "arrived. No injuries were reported. The weather service expects the rain to ease by the "
    "middle of the week, and engineers will inspect the bridges once the water has gone down.",

    "The printing press with movable type changed how ideas spread across Europe in the "
    "fifteenth century. Before it, books were copied by hand, which made them rare and costly. "
    "With metal letters that could be arranged, inked and pressed again and again, a workshop "
    "could produce hundreds of identical pages in a day. Within a few decades presses were "
    "working in many cities, and pamphlets, calendars and books reached readers who had never "
    "owned one before.",

    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the "
    "season of Light, it was the season of Darkness, it was the spring of hope, it was the "
    "winter of despair.",

    "Volcanoes form where molten rock from deep inside the earth reaches the surface. Many lie "
    "along the edges of tectonic plates, where one plate slides beneath another and melts, or "
    "where plates pull apart and let magma well up between them. Others sit above hot spots in "
    "the middle of a plate, and as the plate drifts over the hot spot it leaves behind a chain "
    "of islands, each older than the one before it.",

    "The museum reopened its east wing this weekend after two years of repairs to the roof and "
    "the heating system. Visitors queued from early morning to see the restored collection of "
    "maps and navigation instruments, some of which had not been on display for decades. The "
    "director thanked the donors who paid for most of the work and said that entry to the new "
    "galleries would remain free for children and students.",

    "Chess is played on a board of sixty-four squares arranged in eight rows and eight columns. "
    "Each player begins with sixteen pieces: a king, a queen, two rooks, two bishops, two "
    "knights and eight pawns. The pieces move in different ways, and the aim of the game is to "
    "trap the opposing king so that it cannot escape capture. Games between strong players are "
    "often decided by small advantages built up slowly over many moves.",

    "Whales are mammals, not fish. They breathe air through blowholes on the tops of their "
    "heads, give birth to live young and feed them with milk. Their ancestors walked on land "
    "some fifty million years ago before slowly returning to the water. The largest of them, "
    "the blue whale, is the biggest animal known to have lived, yet it feeds almost entirely on "
    "krill, small shrimp-like creatures that it filters from the sea.",

    "A new bus route connecting the northern suburbs with the hospital and the university will "
    "start running in the spring, the transport authority announced. Buses will leave every "
    "fifteen minutes during the day and every half hour in the evening. The authority said the "
    "route was planned after a survey in which many residents said they had no easy way to "
    "reach the hospital without a car.",

    "Maps have always been shaped by what their makers wanted to show. Early sailors' charts "
    "traced coastlines, harbours and dangerous rocks in great detail but left the interior of "
    "the land almost blank. Road maps show routes and towns and leave out the hills, while "
    "maps of the weather show nothing but air. Every map is a choice about what to keep and "
    "what to leave out, because no sheet of paper can hold the whole world.",
)
