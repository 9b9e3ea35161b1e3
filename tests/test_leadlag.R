# The R calls whose saved output tests/test_leadlag.py checks against (lmtest 0.9-40,
# tests/Examples/lmtest-Ex.Rout.save). The data is tests/data/ChickEgg.csv (lmtest's ChickEgg).
library(lmtest)
data(ChickEgg)
grangertest(chicken ~ egg, order = 3, data = ChickEgg)
#   Res.Df Df      F   Pr(>F)
# 1     44
# 2     47 -3 5.4046 0.002966 **
grangertest(egg ~ chicken, order = 3, data = ChickEgg)
#   Res.Df Df      F Pr(>F)
# 1     44
# 2     47 -3 0.5916 0.6238
# other orders, egg -> chicken
grangertest(chicken ~ egg, order = 1, data = ChickEgg)  # F 1.2071, Pr(>F) 0.2772
grangertest(chicken ~ egg, order = 2, data = ChickEgg)  # F 8.8175, Pr(>F) 0.00056
grangertest(chicken ~ egg, order = 4, data = ChickEgg)  # F 4.2568, Pr(>F) 0.00567

# Benjamini & Hochberg (1995), the paper's 15 p-values: BH at 0.05 rejects 4, Bonferroni 3
p <- c(0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
       0.5719, 0.6528, 0.7590, 1.0000)
sum(p.adjust(p, "BH") <= 0.05)          # 4
sum(p.adjust(p, "bonferroni") <= 0.05)  # 3
